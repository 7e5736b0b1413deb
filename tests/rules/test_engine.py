import textwrap

import numpy as np
import pandas as pd
import pytest

from audit.errors import RuleError
from audit.rules import available_packs, evaluate, load_pack
from audit.rules.engine import Rule, evaluate_rule


def metrics(rows):
    base = {"run_id": "r", "attribute": "", "group": "all", "setting": "", "n": 10, "direction": "neutral"}
    return pd.DataFrame([{**base, **r} for r in rows])


LEAK = [
    {"probe": "leakage", "condition": "clean", "metric": "normalised_gain", "attribute": "sex", "setting": "train=same",
     "value": 0.5, "ci_low": 0.4, "ci_high": 0.6},
    {"probe": "leakage", "condition": "mask:surgical", "metric": "normalised_gain", "attribute": "skin_tone",
     "setting": "train=same", "value": 0.12, "ci_low": 0.03, "ci_high": 0.2},
    {"probe": "leakage", "condition": "mask:n95", "metric": "normalised_gain", "attribute": "skin_tone",
     "setting": "train=same", "value": 0.3, "ci_low": 0.2, "ci_high": 0.4},
]


def rule(**kw):
    base = dict(id="R1", title="t", probe="leakage", metric="normalised_gain", warn_if="> 0.05", fail_if="> 0.15")
    return Rule.model_validate({**base, **kw})


def test_shipped_packs_are_valid():
    names = {load_pack(p).pack for p in available_packs()}
    assert names == {"baseline", "eu-ai-act", "iso-biometrics"}


def test_glob_where_and_aggregate():
    f = evaluate_rule(rule(where={"condition": "mask:*", "attribute": ["skin_tone", "race"]}), metrics(LEAK), {"leakage"})
    assert f.status == "fail" and f.observed == 0.3 and f.location["condition"] == "mask:n95"


def test_use_ci_low_is_conservative():
    """Judged at the lower end, a rule fails or warns only on what the data clearly show; it passes only when the
    upper end does not reach the fail limit either and the measured value is within the warn limit: [0.03, 0.2]
    against "fail if > 0.15" cannot tell a pass from a fail; 0.09 [0.03, 0.12] against "warn if > 0.05" cannot tell
    a pass from a warning (a review of the rules: it passed, its estimate well inside the warn band); neither is
    judged; 0.04 [0.03, 0.12] passes."""
    f = evaluate_rule(rule(where={"condition": "mask:surgical"}, use="ci_low"), metrics(LEAK), {"leakage"})
    assert f.status == "not_applicable" and f.observed == pytest.approx(0.03) and f.location["other_end"] == 0.2
    assert "the max upper end is 0.2, which reaches the fail limit (fail if > 0.15)" in f.message
    assert f.location["undecided"] == "fail"
    narrower = metrics([dict(LEAK[1], value=0.09, ci_high=0.12)])
    f = evaluate_rule(rule(where={"condition": "mask:surgical"}, use="ci_low"), narrower, {"leakage"})
    assert f.status == "not_applicable" and f.location["undecided"] == "warn"
    assert ("the max measured value is 0.09, beyond the warn limit (warn if > 0.05); the data cannot tell a pass "
            "from a warning") in f.message
    inside = metrics([dict(LEAK[1], value=0.04, ci_high=0.12)])
    f = evaluate_rule(rule(where={"condition": "mask:surgical"}, use="ci_low"), inside, {"leakage"})
    assert f.status == "pass" and f.observed == pytest.approx(0.03) and "undecided" not in f.location
    # An interval with its lower end only: nothing shows the result stays within the limits
    f = evaluate_rule(rule(where={"condition": "mask:surgical"}, use="ci_low"),
                      metrics([dict(LEAK[1], value=0.04, ci_high=float("nan"))]), {"leakage"})
    assert f.status == "not_applicable" and f.message.startswith("No interval to judge")
    f = evaluate_rule(rule(where={"condition": "mask:surgical"}, use="value"), metrics(LEAK), {"leakage"})
    assert f.status == "warn"
    # The other end is aggregated as the rule aggregates: the best white-box cloak's lower end decides.
    cloak = [{"probe": "cloak", "condition": c, "metric": "psr_at_1", "setting": "white-box", "value": v,
              "ci_low": v - 0.1, "ci_high": v + 0.1} for c, v in (("cloak:pgd@8", 0.9), ("cloak:pgd@8+purify:jpeg75", 0.1))]
    f = evaluate_rule(rule(probe="cloak", metric="psr_at_1", aggregate="max", use="ci_high", warn_if="< 0.8",
                           fail_if="< 0.5"), metrics(cloak), {"cloak"})
    assert f.status == "pass"


def test_a_rule_judged_on_the_value_passes_only_when_its_interval_stays_short_of_the_fail_limit():
    """A false-match ratio of 1.8 [0.6, 9.0] against "warn if > 2, fail if > 5" cannot tell parity from a five-fold
    disparity (0.3.0 passed it, judged on the value alone); an infinite upper end (resamples where one group had no
    false matches) cannot either; 1.8 [1.2, 3.0] passes. A "<" rule judged on the value looks at the lower end."""
    base = {"probe": "identity", "condition": "clean", "setting": "fmr=0.001", "metric": "fmr_max_min",
            "attribute": "sex"}
    r = rule(probe="identity", metric="fmr_max_min", warn_if="> 2", fail_if="> 5", use="value")
    for high in (9.0, np.inf):
        f = evaluate_rule(r, metrics([{**base, "value": 1.8, "ci_low": 0.6, "ci_high": high}]), {"identity"})
        assert f.status == "not_applicable" and f.location["undecided"] == "fail", f.message
        assert f.observed == pytest.approx(1.8)
        assert f"the value passes, but the max upper end is {high:.4g}, which reaches the fail limit" in f.message
    f = evaluate_rule(r, metrics([{**base, "value": 1.8, "ci_low": 1.2, "ci_high": 3.0}]), {"identity"})
    assert f.status == "pass" and "undecided" not in f.location
    f = evaluate_rule(r, metrics([{**base, "value": 1.8, "ci_low": 1.2, "ci_high": np.nan}]), {"identity"})
    assert f.status == "not_applicable" and "has no upper end" in f.message
    # A warning or failure on the value stands whatever the interval.
    f = evaluate_rule(r, metrics([{**base, "value": 2.5, "ci_low": 0.9, "ci_high": 9.0}]), {"identity"})
    assert f.status == "warn"
    low = rule(probe="identity", metric="tar_at_fmr", warn_if="< 0.95", fail_if="< 0.80", use="value")
    tar = {"probe": "identity", "condition": "clean", "setting": "fmr=0.001", "metric": "tar_at_fmr"}
    f = evaluate_rule(low, metrics([{**tar, "value": 0.97, "ci_low": 0.70, "ci_high": 0.99}]), {"identity"})
    assert f.status == "not_applicable" and "the max lower end is 0.7" in f.message
    f = evaluate_rule(low, metrics([{**tar, "value": 0.97, "ci_low": 0.90, "ci_high": 0.99}]), {"identity"})
    assert f.status == "pass"
    # A fail limit that sets no side ("== 9") leaves the warn limit to keep the interval short of (a review: the
    # check was skipped and 1.8 [0.6, 9.0] passed).
    f = evaluate_rule(rule(probe="identity", metric="fmr_max_min", warn_if="> 2", fail_if="== 9", use="value"),
                      metrics([{**base, "value": 1.8, "ci_low": 0.6, "ci_high": 9.0}]), {"identity"})
    assert f.status == "not_applicable" and f.location["undecided"] == "warn", f.message
    # No side to keep short of: "!=" judges the value alone.
    f = evaluate_rule(rule(probe="identity", metric="tar_at_fmr", warn_if="!= 1", fail_if=None, use="value"),
                      metrics([{**tar, "value": 1.0, "ci_low": 0.2, "ci_high": 1.0}]), {"identity"})
    assert f.status == "pass"


def test_probe_not_run_is_not_applicable_never_pass():
    f = evaluate_rule(rule(probe="inversion", metric="sar_type1"), metrics(LEAK), {"leakage"})
    assert f.status == "not_applicable" and "did not run" in f.message
    f = evaluate_rule(rule(where={"attribute": "race"}), metrics(LEAK), {"leakage"})
    assert f.status == "not_applicable"


def test_nan_values_are_skipped():
    rows = [dict(LEAK[0], value=np.nan, ci_low=np.nan, ci_high=np.nan)]
    assert evaluate_rule(rule(), metrics(rows), {"leakage"}).status == "not_applicable"


def test_evaluate_returns_table_rows():
    pack = load_pack("baseline")
    df = evaluate(pack, "r", metrics(LEAK), {"leakage"})
    assert set(df["status"]) <= {"pass", "warn", "fail", "not_applicable"}
    assert df.set_index("rule_id").loc["ID-CLEAN-TAR", "status"] == "not_applicable"


def write(tmp_path, text):
    p = tmp_path / "pack.yaml"
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("body,match", [
    ("""
     pack: p
     rules:
       - id: A1
         title: t
         probe: leakage
         metric: normalised_gian
         warn_if: "> 0.1"
     """, r"pack.yaml: rule A1: field 'metric': unknown metric 'normalised_gian'"),
    ("""
     pack: p
     rules:
       - id: A2
         title: t
         probe: leakage
         metric: normalised_gain
         warn_if: "bigger than 0.1"
     """, r"rule A2: field 'warn_if': bad comparator"),
    ("""
     pack: p
     rules:
       - id: A3
         probe: leakage
         metric: normalised_gain
         warn_if: "> 0.1"
     """, r"rule A3: field 'title'"),
    ("""
     pack: p
     rules:
       - id: A4
         title: t
         probe: leakage
         metric: normalised_gain
     """, r"rule A4: field 'warn_if'/'fail_if'"),
    ("""
     pack: p
     rules:
       - id: A5
         title: t
         probe: leakage
         metric: normalised_gain
         fail_if: "> 0.1"
         where: {conditon: clean}
     """, r"rule A5: field 'where': .*unknown key"),
    ("pack: p\nrules: []\n", r"field 'rules' must be a non-empty list"),
    ("pack: [unclosed\n", r"not valid YAML"),
])
def test_broken_packs_name_file_rule_and_field(tmp_path, body, match):
    with pytest.raises(RuleError, match=match):
        load_pack(write(tmp_path, body))


def _pack_rule(pack: str, rule_id: str) -> Rule:
    return next(r for r in load_pack(pack).rules if r.id == rule_id)


def cloak_rows(clean_psr: float, purified_psr: float, transfer_psr: float):
    rows = []
    for cond, setting, psr in (("cloak:opom-affine@8", "white-box", clean_psr),
                               ("cloak:opom-affine@8+purify:jpeg75", "white-box", purified_psr),
                               ("cloak:opom-affine@8+purify:blur1", "white-box", min(1.0, purified_psr + 0.2)),
                               ("cloak:fi-uap@8", "transfer:fr-other", transfer_psr),
                               ("cloak:best@8", "white-box", clean_psr), ("cloak:best@8", "transfer:fr-other", transfer_psr),
                               ("cloak:best@8", "transfer:any", transfer_psr)):
        rows.append({"probe": "cloak", "condition": cond, "metric": "psr_at_1", "setting": setting, "value": psr,
                     "ci_low": max(0.0, psr - 0.05), "ci_high": min(1.0, psr + 0.05), "direction": "lower_is_riskier"})
    return metrics(rows)


@pytest.mark.parametrize("psr,purified,transfer,expect", [
    (1.0, 0.9, 0.8, ("pass", "pass", "pass")),
    (0.3, 0.1, 0.1, ("fail", "fail", "fail")),
    (0.7, 0.3, 0.3, ("warn", "warn", "warn")),
])
def test_cloak_rules_treat_low_protection_as_risk(psr, purified, transfer, expect):
    m = cloak_rows(psr, purified, transfer)
    got = tuple(evaluate_rule(_pack_rule(pack, rid), m, {"cloak"}).status for pack, rid in (
        ("baseline", "CLOAK-WHITEBOX-PROTECTS"), ("baseline", "CLOAK-SURVIVES-PURIFICATION"),
        ("eu-ai-act", "AIA-5-1-E-CLOAK-TRANSFER")))
    assert got == expect
    purif = evaluate_rule(_pack_rule("baseline", "CLOAK-SURVIVES-PURIFICATION"), m, {"cloak"})
    assert purif.location["condition"] == "cloak:opom-affine@8+purify:jpeg75"  # the weakest purifier is judged


def test_masked_inversion_rules_judge_masked_templates_only():
    rows = [{"probe": "inversion", "condition": cond, "metric": "sar_type1", "setting": "black-box;target;fmr=0.001",
             "value": v, "ci_low": v - 0.05, "ci_high": v + 0.05, "direction": "higher_is_riskier"}
            for cond, v in (("clean", 0.9), ("mask:surgical", 0.12))]
    for pack, rid, expect in (("baseline", "INV-MASKED-TEMPLATES", "warn"),
                              ("eu-ai-act", "AIA-15-INVERSION-MASKED", "warn"),
                              ("iso-biometrics", "ISO24745-IRREVERSIBILITY-MASKED", "warn")):
        f = evaluate_rule(_pack_rule(pack, rid), metrics(rows), {"inversion"})
        assert f.status == expect and f.location["condition"] == "mask:surgical", rid


@pytest.mark.parametrize("ci_low,status", [(0.0, "not_applicable"), (0.05, "warn"), (0.3, "fail")])
def test_membership_rule_on_too_few_nonmembers_never_passes(ci_low, status):
    """The shipped MEMB-TRAINING-PERSONS rule on an FPR-1% operating point that 300 non-members cannot back: what
    would pass is not judged and says how many more non-member persons it needs (the stored count); a lower
    interval end above the warn or fail limit still warns or fails."""
    pack = load_pack("baseline")
    (memb,) = [r for r in pack.rules if r.id == "MEMB-TRAINING-PERSONS"]
    rows = [{"probe": "membership", "condition": "clean", "metric": "membership_tpr_at_fpr",
             "setting": "strongest;fpr=0.01;unsupported", "value": ci_low + 0.02, "ci_low": ci_low, "ci_high": 0.4},
            {"probe": "membership", "condition": "clean", "metric": "membership_tpr_at_fpr",
             "setting": "tightness;fpr=0.01;unsupported", "value": 0.9, "ci_low": 0.8, "ci_high": 1.0},
            {"probe": "membership", "condition": "clean", "metric": "membership_nonmembers_needed",
             "setting": "fpr=0.01", "value": 2700.0, "ci_low": 2700.0, "ci_high": 2700.0},
            {"probe": "membership", "condition": "clean", "metric": "membership_nonmembers_needed",
             "setting": "fpr=0.001", "value": 29700.0, "ci_low": 29700.0, "ci_high": 29700.0}]
    f = evaluate_rule(memb, metrics(rows), {"membership"})
    assert f.status == status and f.observed == ci_low  # the strongest attack only, not the tightness row
    if status == "not_applicable":
        assert f.location["needs_persons"] == 2700
        assert "it needs 2700 more non-member persons. Not judged as passing." in f.message
    else:
        assert "needs_persons" not in f.location


def test_a_result_without_the_judged_interval_end_never_lets_a_rule_pass():
    """A value whose resamples gave no interval (NaN ends) is not dropped: the rule cannot pass on the other rows
    (it says which result it could not judge), and other rows that warn or fail still do."""
    rows = [dict(LEAK[1], value=0.9, ci_low=np.nan, ci_high=np.nan), dict(LEAK[1], condition="mask:n95", value=0.02,
                                                                          ci_low=0.0, ci_high=0.04)]
    f = evaluate_rule(rule(where={"condition": "mask:*"}, use="ci_low"), metrics(rows), {"leakage"})
    assert f.status == "not_applicable" and f.location["unjudged"]["condition"] == "mask:surgical"
    assert "have a value but no lower end of the 95% CI to judge" in f.message and "value 0.9" in f.message
    f = evaluate_rule(rule(where={"condition": "mask:*"}, use="ci_low"), metrics(rows[:1]), {"leakage"})
    assert f.status == "not_applicable" and f.location["rows"] == 0
    rows[1].update(ci_low=0.2)
    assert evaluate_rule(rule(where={"condition": "mask:*"}, use="ci_low"), metrics(rows), {"leakage"}).status == "fail"


def test_a_mean_over_unsupported_operating_points_never_passes():
    """An operating point the data cannot back may warn or fail, never pass, whichever way the rule aggregates;
    identity's unsupported FMR targets are explained as such, not as missing non-members."""
    rows = [{"probe": "membership", "condition": "clean", "metric": "membership_tpr_at_fpr",
             "setting": "strongest;fpr=0.01;unsupported", "value": 0.01, "ci_low": 0.0, "ci_high": 0.05}]
    for aggregate in ("mean", "max", "min"):
        f = evaluate_rule(rule(probe="membership", metric="membership_tpr_at_fpr", aggregate=aggregate, use="ci_low",
                               warn_if="> 0.02", fail_if="> 0.1"), metrics(rows), {"membership"})
        assert f.status == "not_applicable" and "it needs more non-member persons" in f.message, aggregate
    rows = [{"probe": "identity", "condition": "clean", "metric": "fmr_max_min", "attribute": "sex",
             "setting": "fmr=0.01;unsupported", "value": 1.2, "ci_low": 1.0, "ci_high": 1.5}]
    f = evaluate_rule(rule(probe="identity", metric="fmr_max_min", warn_if="> 2", fail_if="> 5"), metrics(rows),
                      {"identity"})
    assert f.status == "not_applicable" and "Too few comparisons to judge at fmr=0.01" in f.message
    assert "non-member" not in f.message


def test_a_condition_pattern_matches_combined_conditions_through_their_parts():
    """'mask:*' finds a mask worn with sunglasses whichever part comes first, and 'clean' stays the unaltered face."""
    rows = [dict(LEAK[1], value=0.05, ci_low=0.0, ci_high=0.1),
            dict(LEAK[1], condition="sunglasses+mask:n95", value=0.5, ci_low=0.45, ci_high=0.55),
            dict(LEAK[1], condition="clean+mask:n95", value=0.7, ci_low=0.65, ci_high=0.75)]
    f = evaluate_rule(rule(where={"condition": "mask:*"}, use="ci_low"), metrics(rows), {"leakage"})
    assert f.status == "fail" and f.location["rows"] == 3 and f.location["condition"] == "clean+mask:n95"
    f = evaluate_rule(rule(where={"condition": "sunglasses"}, use="ci_low"), metrics(rows), {"leakage"})
    assert f.location["rows"] == 1 and f.location["condition"] == "sunglasses+mask:n95"
    f = evaluate_rule(rule(where={"condition": "clean"}, use="ci_low"), metrics(rows), {"leakage"})
    assert f.status == "not_applicable"


def test_setting_filters_are_written_as_results_store_rates():
    """'fmr=1e-3' in a pack means the stored 'fmr=0.001' (a rule spelling it otherwise would never match); comparators
    take '.5' and '1e+3'."""
    r = rule(probe="identity", metric="fmr_max_min", warn_if="> .5", fail_if="> 1e+3",
             where={"setting": ["fmr=1e-3", "fmr=1E-02;unsupported"]})
    assert r.where["setting"] == ["fmr=0.001", "fmr=0.01;unsupported"]
    assert rule(probe="inversion", metric="sar_type1", where={"setting": "black-box;*;fmr=1E-02;unsupported"}
                ).where["setting"] == "black-box;*;fmr=0.01;unsupported"
    rows = [{"probe": "identity", "condition": "clean", "metric": "fmr_max_min", "attribute": "sex",
             "setting": "fmr=0.001", "value": 3.0, "ci_low": 2.0, "ci_high": 4.0}]
    assert evaluate_rule(r, metrics(rows), {"identity"}).status == "warn"


INVERSION_RULES = (("baseline", "INV-MASKED-TEMPLATES"), ("eu-ai-act", "AIA-15-INVERSION"),
                   ("eu-ai-act", "AIA-15-INVERSION-MASKED"), ("iso-biometrics", "ISO24745-IRREVERSIBILITY"),
                   ("iso-biometrics", "ISO24745-IRREVERSIBILITY-TEMPLATE-ONLY"), ("iso-biometrics", "ISO30136-SAR-TYPE2"),
                   ("iso-biometrics", "ISO24745-IRREVERSIBILITY-MASKED"), ("iso-biometrics", "ISO24745-IRREVERSIBILITY-QUERY"))


@pytest.mark.parametrize("v,lo,hi,expect", [(1.0, 0.976, 1.0, "fail"), (0.01, 0.0, 0.03, "not_applicable")])
def test_shipped_inversion_rules_see_an_operating_point_too_few_victims_back(v, lo, hi, expect):
    """With fewer than about 250 victims FMR 1e-3 is stored as 'ATTACK;JUDGE;fmr=0.001;unsupported' (the demo's 150
    victims): every shipped inversion rule must still see it, so a model whose templates are inverted for nearly
    everyone fails; what would pass there is not judged (too few comparisons), never passed."""
    rows = [{"probe": "inversion", "condition": cond, "metric": metric, "setting": f"{attack};target;fmr=0.001;unsupported",
             "value": v, "ci_low": lo, "ci_high": hi, "direction": "higher_is_riskier"}
            for cond in ("clean", "mask:surgical") for metric in ("sar_type1", "sar_type2")
            for attack in ("black-box", "query")]
    for pack, rid in INVERSION_RULES:
        f = evaluate_rule(_pack_rule(pack, rid), metrics(rows), {"inversion"})
        assert f.status == expect, (rid, f.message)
        if expect == "not_applicable":
            assert f.message.startswith("Too few comparisons to judge at ") and "fmr=0.001:" in f.message, rid


def test_a_max_over_supported_and_unsupported_points_never_passes():
    """'Pools (any aggregate)': a max whose picked row is supported still pools an unsupported one."""
    rows = [{"probe": "identity", "condition": "clean", "metric": "fnmr", "setting": s, "value": v, "ci_low": lo,
             "ci_high": hi} for s, v, lo, hi in (("fmr=0.01", 0.04, 0.03, 0.05), ("fmr=0.001;unsupported", 0.03, 0.0, 0.45))]
    for aggregate in ("max", "min", "mean"):
        f = evaluate_rule(rule(probe="identity", metric="fnmr", where={"setting": "fmr=*"}, aggregate=aggregate,
                               warn_if="> 0.5", fail_if="> 0.6", use="value"), metrics(rows), {"identity"})
        assert f.status == "not_applicable" and "Too few comparisons" in f.message, aggregate


def test_an_undefined_disparity_beside_passing_ones_never_passes():
    """A two-group attribute whose small group has no same-group comparisons gives an undefined FMR ratio (NaN):
    the rule must not pass on the other attributes' ratios; with the group sizes stored, it says which group is too
    small; a warning on another attribute still names the undefined result."""
    base = {"probe": "identity", "condition": "clean", "setting": "fmr=0.001"}
    rows = [{**base, "metric": "fmr_max_min", "attribute": "sex", "value": 1.1, "ci_low": 1.0, "ci_high": 1.3},
            {**base, "metric": "fmr_max_min", "attribute": "skin_tone", "value": np.nan, "ci_low": np.nan,
             "ci_high": np.nan}]
    r = rule(probe="identity", metric="fmr_max_min", warn_if="> 2", fail_if="> 5", use="value")
    f = evaluate_rule(r, metrics(rows), {"identity"})
    assert f.status == "not_applicable" and f.location["unjudged"]["attribute"] == "skin_tone"
    assert "have no value to judge" in f.message
    sizes = [{**base, "metric": "group_persons", "attribute": a, "group": g, "value": float(n), "ci_low": float(n),
              "ci_high": float(n)} for a, g, n in (("sex", "f", 100), ("sex", "m", 100), ("skin_tone", "light", 199),
                                                   ("skin_tone", "dark", 1))]
    sizes.append({**base, "metric": "fmr", "value": 0.001, "ci_low": 0.0008, "ci_high": 0.0012})
    f = evaluate_rule(r, metrics(rows + sizes), {"identity"})
    assert f.status == "not_applicable" and "group 'dark' of skin_tone has 1 persons" in f.message
    rows[0].update(value=3.0)
    f = evaluate_rule(r, metrics(rows), {"identity"})
    assert f.status == "warn" and f.location["unjudged"]["attribute"] == "skin_tone" and "Not judged:" in f.message


def test_a_target_the_identity_probe_could_not_back_is_named_as_such():
    """Identity measures no FMR target its impostor comparisons cannot back: a rule at FMR 1e-3 on a run that only
    has 1e-2 says so (and the report files it under too few comparisons), not 'no matching result'; a rule whose
    condition was not run still says that."""
    rows = [{"probe": "identity", "condition": "clean", "metric": "tar_at_fmr", "setting": "fmr=0.01", "value": 0.99,
             "ci_low": 0.98, "ci_high": 1.0}]  # a pass at 1e-2 says nothing of 1e-3 (a warning would: see below)
    f = evaluate_rule(_pack_rule("baseline", "ID-CLEAN-TAR"), metrics(rows), {"identity"})
    assert f.status == "not_applicable" and f.location["measured_at"] == ["fmr=0.01"]
    assert f.message.startswith("Too few comparisons to judge: no tar_at_fmr result at fmr=0.001")
    from audit.report.narrative import not_judged_reason
    assert not_judged_reason({"message": f.message, "probe": "identity", "location": f.location}) == \
        "too few comparisons for the error-rate target"
    rows[0]["metric"] = "fnmr"
    f = evaluate_rule(_pack_rule("baseline", "ID-MASK-FNMR"), metrics(rows), {"identity"})
    assert f.message.startswith("No fnmr result matched")  # no masked condition at any rate


@pytest.mark.parametrize("overall,words", [(0.023, "at the overall FNMR 0.023"),
                                           (0.0, "at 0.375, the rule-of-three bound on the FNMR (no errors seen")])
def test_a_small_group_is_measured_against_the_rate_seen_not_a_floor_above_it(overall, words):
    """Labels for 8 persons: 3/8 = 0.375 is the rule-of-three bound when no error was seen at all; with errors seen
    the overall FNMR (0.023) is the rate, and a lower rate asks for more persons, never fewer."""
    base = {"probe": "identity", "condition": "clean", "setting": "fmr=0.001"}
    rows = [{**base, "metric": "fnmr_max_min", "attribute": "sex", "value": 1.2, "ci_low": 1.0, "ci_high": 1.5},
            {**base, "metric": "fnmr", "value": overall, "ci_low": 0.0, "ci_high": 0.05}]
    rows += [{**base, "metric": "group_persons", "attribute": "sex", "group": g, "value": 4.0, "ci_low": 4.0,
              "ci_high": 4.0} for g in ("f", "m")]
    f = evaluate_rule(rule(probe="identity", metric="fnmr_max_min", warn_if="> 2", fail_if="> 5", use="value"),
                      metrics(rows), {"identity"})
    assert f.status == "not_applicable" and words in f.message, f.message
    assert f.location["needs_persons"] > (100 if overall else 0)


def test_an_infinite_value_beside_a_result_without_interval_reads_plainly():
    base = {"probe": "identity", "condition": "clean", "setting": "fmr=0.001", "metric": "fnmr_max_min"}
    rows = [{**base, "attribute": "sex", "value": np.inf, "ci_low": 2.0, "ci_high": np.inf},
            {**base, "attribute": "race", "value": 1.4, "ci_low": np.nan, "ci_high": np.nan}]
    f = evaluate_rule(rule(probe="identity", metric="fnmr_max_min", warn_if="> 2", fail_if="> 5", use="ci_low"),
                      metrics(rows), {"identity"})
    assert f.status == "fail" and "value (infinite: one group has no errors" in f.message
    assert "Not judged: 1 fnmr_max_min result(s) have a value but no lower end of the 95% CI to judge" in f.message
    rows[0]["value"] = 3.0  # only the interval's end is infinite: said as such, also for a mean
    for aggregate in ("max", "mean"):
        f = evaluate_rule(rule(probe="identity", metric="fnmr_max_min", warn_if="> 2", fail_if="> 5", use="ci_high",
                               aggregate=aggregate), metrics(rows[:1]), {"identity"})
        assert "upper end of the 95% CI (unbounded: on some resamples" in f.message, aggregate


@pytest.mark.parametrize("spent,expect", [(None, "not_applicable"), (1, "not_applicable"), (161, "not_applicable"),
                                          (181, "not_applicable"), (200, "pass"), (1000, "pass")])
def test_query_inversion_passes_only_on_the_smallest_presets_budget(spent, expect):
    """Review F2: ISO24745-IRREVERSIBILITY-QUERY passed a run whose query attacker had 1 query per victim (the decoder's
    image alone): 0 of 48 victims accepted passes only when the attacker spent at least the quick preset's 200 (it
    spends its whole budget; 0.2.0 spent 181, in whole steps of 20); on fewer, or with no stored count, it is not
    judged as passing. The finding
    states the queries spent whatever its status, and a pooled rule (ISO24745-IRREVERSIBILITY, the strongest of all
    threat models) holds the query row to the same floor."""
    rows = [{"probe": "inversion", "condition": "clean", "metric": "sar_type1", "setting": f"{a};target;fmr=0.001",
             "value": 0.0, "ci_low": 0.0, "ci_high": 0.074, "n": 48, "direction": "higher_is_riskier"}
            for a in ("query", "black-box")]
    if spent is not None:
        rows.append({"probe": "inversion", "condition": "clean", "metric": "queries_per_victim", "setting": "query",
                     "value": spent, "ci_low": spent, "ci_high": spent, "n": 48})
    for rid in ("ISO24745-IRREVERSIBILITY-QUERY", "ISO24745-IRREVERSIBILITY"):
        f = evaluate_rule(_pack_rule("iso-biometrics", rid), metrics(rows), {"inversion"})
        assert f.status == expect, (rid, f.message)
        if spent is not None:
            assert f"The query-only attacker spent {spent} queries per victim" in f.message
        if expect == "not_applicable":
            assert f.message.startswith("Too few queries to judge") and "200 queries per victim" in f.message
    # The template-only rule reads no query row: the budget does not concern it.
    f = evaluate_rule(_pack_rule("iso-biometrics", "ISO24745-IRREVERSIBILITY-TEMPLATE-ONLY"), metrics(rows), {"inversion"})
    assert f.status == "pass" and "queries per victim" not in f.message
    # A clear failure within a small budget still fails (success within fewer queries is success).
    bad = [dict(r, value=0.5, ci_low=0.35, ci_high=0.65) if r["metric"] == "sar_type1" else r for r in rows]
    assert evaluate_rule(_pack_rule("iso-biometrics", "ISO24745-IRREVERSIBILITY-QUERY"), metrics(bad),
                         {"inversion"}).status == "fail"


def test_a_query_budget_below_the_attackers_first_step_is_refused():
    """Review F2: --inversion-queries 1..20 let the query attacker take no step (its result was the decoder's image);
    such a budget is refused with the reason, 21 (the decoder's image plus one step of 20) is accepted."""
    from pydantic import ValidationError

    from audit.config import QUERY_FIRST_STEP, AuditConfig
    from audit.probes.query import POP, checkpoints

    assert QUERY_FIRST_STEP == POP + 1 and checkpoints(QUERY_FIRST_STEP) == [1, QUERY_FIRST_STEP]
    for budget in (1, 20):
        with pytest.raises(ValidationError, match="take no step"):
            AuditConfig(model="m.onnx", inversion_queries=budget)
    assert AuditConfig(model="m.onnx", inversion_queries=21).inversion_queries == 21


def test_a_membership_rule_too_few_non_members_back_names_what_the_run_does_show():
    """Review F4: on the planted set (300 non-members) AIA-10-TRAINING-MEMBERSHIP, the eu-ai-act pack's only membership
    rule, reads FPR 0.01 and is not applicable, while the run clearly detects membership (AUC 0.643 [0.584, 0.704],
    TPR at FPR 0.1 0.260 [0.182, 0.351] with 10.7% of non-members accused). The finding now says what the
    non-members do back, so an auditor reading that pack alone is not left with 'not applicable' and nothing else."""
    rows = [{"probe": "membership", "condition": "clean", "metric": "membership_tpr_at_fpr",
             "setting": "strongest;fpr=0.01;unsupported", "value": 0.025, "ci_low": 0.0, "ci_high": 0.181},
            {"probe": "membership", "condition": "clean", "metric": "membership_tpr_at_fpr",
             "setting": "strongest;fpr=0.1", "value": 0.26, "ci_low": 0.182, "ci_high": 0.351},
            {"probe": "membership", "condition": "clean", "metric": "membership_fpr",
             "setting": "strongest;fpr=0.1", "value": 0.107, "ci_low": 0.07, "ci_high": 0.15},
            {"probe": "membership", "condition": "clean", "metric": "membership_auc", "setting": "strongest",
             "value": 0.643, "ci_low": 0.584, "ci_high": 0.704},
            {"probe": "membership", "condition": "clean", "metric": "membership_nonmembers_needed",
             "setting": "fpr=0.01", "value": 2700.0, "ci_low": 2700.0, "ci_high": 2700.0}]
    f = evaluate_rule(_pack_rule("eu-ai-act", "AIA-10-TRAINING-MEMBERSHIP"), metrics(rows), {"membership"})
    assert f.status == "not_applicable" and "it needs 2700 more non-member persons" in f.message
    assert ("What the non-members do back, which this rule does not judge: the strongest attack's AUC is 0.643 (95% CI "
            "0.584 to 0.704; above chance, 0.5); its true-positive rate at a false-positive target of 0.1 is 0.260 "
            "(95% CI 0.182 to 0.351, with 10.7% of non-members accused)") in f.message



def test_a_pass_needs_the_measured_value_within_the_warn_limit():
    """A review of the rules: a shipped rule judged at the lower end passed an inversion rate of 0.07 [0.009, 0.10]
    (seven templates in a hundred inverted into faces the system accepts) against 'warn if > 0.01', because only the
    fail limit was checked at the other end. It is now too uncertain to judge (a pass cannot be told from a warning);
    0 of 48 victims inverted [0, 0.074] still passes (a fail is excluded, the measured value is within the limit)."""
    base = {"probe": "inversion", "condition": "clean", "metric": "sar_type1", "n": 100,
            "direction": "higher_is_riskier"}
    rows = [dict(base, setting=f"{a};target;fmr=0.001", value=0.07, ci_low=0.009, ci_high=0.10)
            for a in ("white-box", "black-box")]
    r = _pack_rule("iso-biometrics", "ISO24745-IRREVERSIBILITY-TEMPLATE-ONLY")
    f = evaluate_rule(r, metrics(rows), {"inversion"})
    assert f.status == "not_applicable" and f.location["undecided"] == "warn", f.message
    assert "measured value is 0.07, beyond the warn limit" in f.message
    rows = [dict(base, setting=f"{a};target;fmr=0.001", value=0.0, ci_low=0.0, ci_high=0.074)
            for a in ("white-box", "black-box")]
    assert evaluate_rule(r, metrics(rows), {"inversion"}).status == "pass"


def test_every_shipped_rule_states_its_direction():
    """The README says each rule's rationale says which direction is risk; 17 of 33 had no rationale at all."""
    missing = [f"{load_pack(p).pack}/{r.id}" for p in available_packs() for r in load_pack(p).rules
               if "Direction:" not in r.rationale]
    assert not missing, missing


def test_review_of_the_packs_best_cloaks_clean_leakage_and_fmr_parity():
    """A review of the verdict path: the best-cloak rules took a max that included the attacker's purifier (5-bit
    quantisation raised transfer PSR) and any cloak budget (an eps-64 cloak turned a fail into a pass); baseline
    judged age only on masked faces and skin tone only masked, so a clean-only run had them judged by nothing, and
    the unread check did not see it; its only fairness rule (the FDR) could not see a 20x false-match disparity."""
    from audit.rules.engine import attributes_unread

    cloak = [{"probe": "cloak", "metric": "psr_at_1", "setting": "white-box", "condition": c, "value": v,
              "ci_low": max(v - 0.15, 0), "ci_high": min(v + 0.15, 1)}
             for c, v in (("cloak:best@8", 0.30), ("cloak:pgd@8+purify:bits5", 1.0), ("cloak:best@64", 1.0),
                          ("cloak:pgd@8", 1.0))]  # a method's own row: the largest, picked on these persons
    f = evaluate_rule(_pack_rule("baseline", "CLOAK-WHITEBOX-PROTECTS"), metrics(cloak), {"cloak"})
    assert f.status == "fail" and f.location["condition"] == "cloak:best@8" and f.location["rows"] == 1
    transfer = [dict(r, setting="transfer:any", value=v, ci_low=v - 0.05, ci_high=v + 0.05)
                for r, v in zip(cloak, (0.08, 0.8, 0.8, 0.8))]
    f = evaluate_rule(_pack_rule("eu-ai-act", "AIA-5-1-E-CLOAK-TRANSFER"), metrics(transfer), {"cloak"})
    assert f.status == "fail" and f.location["condition"] == "cloak:best@8"
    age = [{"probe": "leakage", "metric": "mae_gain", "condition": "clean", "attribute": "age", "setting": "train=same",
            "value": 0.80, "ci_low": 0.75, "ci_high": 0.85}]
    f = evaluate_rule(_pack_rule("baseline", "LEAK-AGE-CLEAN"), metrics(age), {"leakage"})
    assert f.status == "fail"
    masked_only = [load_pack("baseline").model_copy(update={"rules": [_pack_rule("baseline", "LEAK-AGE-MASKED")]})]
    assert attributes_unread(masked_only, metrics(age)) == ["age"]  # measured only where no rule looks
    fmr = [{"probe": "identity", "metric": "fmr_max_min", "condition": "clean", "attribute": "sex",
            "setting": "fmr=0.001", "value": 20.0, "ci_low": 12.0, "ci_high": 35.0}]
    assert evaluate_rule(_pack_rule("baseline", "DEMO-FMR-PARITY"), metrics(fmr), {"identity"}).status == "fail"


@pytest.mark.parametrize("name,judged", [("gender", "sex"), ("Sex", "sex"), ("skintone", "skin_tone"),
                                         ("ethnicity", "race")])
def test_a_where_attribute_results_are_never_stored_under_is_refused(name, judged):
    """A review of the verdict path: 'gender' (or 'Sex', 'skintone') loaded, but the loader reads such a column as
    'sex', so the rule matched no result, ever."""
    with pytest.raises(ValueError, match=f"attribute '{name}': a column so named is read as '{judged}'"):
        rule(where={"attribute": [name]})
    with pytest.raises(ValueError, match=f"read as '{judged}'"):
        rule(exclude={"attribute": name})


def test_a_failure_at_a_looser_false_match_target_holds_at_the_rules():
    """A review of the verdict path: on fewer than ~174 persons identity cannot back FMR 1e-3, so ID-CLEAN-TAR and
    AIA-15-ACCURACY were not judged even when TAR at 1e-2 was 0.40 [0.30, 0.50]: TAR at 1e-3 can only be lower, so
    that is a failure at 1e-3 too. A looser result that would pass proves nothing and still leaves the rule unjudged."""
    base = {"probe": "identity", "condition": "clean", "metric": "tar_at_fmr", "setting": "fmr=0.01"}
    for rid, pack in (("ID-CLEAN-TAR", "baseline"), ("AIA-15-ACCURACY", "eu-ai-act")):
        f = evaluate_rule(_pack_rule(pack, rid), metrics([dict(base, value=0.40, ci_low=0.30, ci_high=0.50)]),
                          {"identity"})
        assert f.status == "fail" and f.location["bound_from"] == "fmr=0.01", f.message
        assert f.message.startswith("Measured at fmr=0.01 only (too few comparisons for fmr=0.001): tar_at_fmr at "
                                    "the stricter target can only be lower, so this fail holds there too.")
        f = evaluate_rule(_pack_rule(pack, rid), metrics([dict(base, value=0.99, ci_low=0.98, ci_high=1.0)]),
                          {"identity"})
        assert f.status == "not_applicable" and f.message.startswith("Too few comparisons to judge")
    fnmr = [dict(base, metric="fnmr", condition="mask:n95", value=0.70, ci_low=0.6, ci_high=0.8)]
    assert evaluate_rule(_pack_rule("baseline", "ID-MASK-FNMR"), metrics(fnmr), {"identity"}).status == "fail"


def test_a_verdict_a_looser_target_cannot_exclude_is_not_excluded_at_the_rules_either():
    """A review of the verdicts: masked FNMR 0.08 [0.02, 0.35] against "fail if > 0.30" was undecided (a fail not
    excluded: the strict gate closed) when stored at FMR 1e-3, and plain "too few comparisons" (the gate opened, a
    signed statement read PASSED) on fewer persons, where only FMR 1e-2 could be measured. FNMR at the stricter
    target can only be higher, so what 1e-2 cannot exclude, 1e-3 cannot either."""
    row = {"probe": "identity", "condition": "mask:n95", "metric": "fnmr", "value": 0.08, "ci_low": 0.02,
           "ci_high": 0.35}
    rich = evaluate_rule(_pack_rule("baseline", "ID-MASK-FNMR"), metrics([dict(row, setting="fmr=0.001")]),
                         {"identity"})
    for thin_setting in ("fmr=0.01", "fmr=0.01;unsupported"):
        thin = evaluate_rule(_pack_rule("baseline", "ID-MASK-FNMR"), metrics([dict(row, setting=thin_setting)]),
                             {"identity"})
        assert rich.status == thin.status == "not_applicable", thin.message
        assert rich.location["undecided"] == thin.location["undecided"] == "fail", thin.message
        assert thin.location["bound_from"] == thin_setting
        assert thin.message.startswith(f"Too few comparisons for fmr=0.001; measured at {thin_setting}, where a fail "
                                       "cannot be excluded: fnmr at the stricter target can only be higher")


def test_a_rule_not_judged_records_the_verdict_its_value_does_not_exclude():
    """A review of the change: only 'too uncertain' findings recorded what they could not exclude, so a result
    without the end it judges, at three times the fail limit, opened the strict gate and was signed PASSED. Every
    finding not judged although it has results now records the limit its measured value reaches."""
    row = dict(LEAK[1], value=0.50, ci_low=float("nan"), ci_high=0.7)
    f = evaluate_rule(rule(where={"condition": "mask:surgical"}, use="ci_low"), metrics([row]), {"leakage"})
    assert f.status == "not_applicable" and f.location["undecided"] == "fail"
    assert f.message.endswith("The max measured value, 0.5, reaches the fail limit itself.")
    low = dict(row, value=0.01, ci_high=0.10)  # value and upper end within the limits: nothing to record
    f = evaluate_rule(rule(where={"condition": "mask:surgical"}, use="ci_low"), metrics([low]), {"leakage"})
    assert f.status == "not_applicable" and "undecided" not in f.location


def test_a_warning_whose_value_or_interval_reaches_the_fail_limit_says_a_fail_is_not_excluded():
    """A review of the rules: judged at the interval's lenient end, an inversion rate of 0.50 [0.02, 0.84] against
    "fail if > 0.10" showed a plain warn quoting only 0.02, and the gate at --fail-on fail opened on it. The warning
    stands, but the finding says that a fail cannot be excluded, with the number, and the gate lists it beside an open
    verdict (tests/evidence/test_gate.py)."""
    from audit.evidence.gate import fail_not_excluded, judge

    inv = next(r for r in load_pack("iso-biometrics").rules if r.id == "ISO24745-IRREVERSIBILITY")
    row = {"probe": "inversion", "condition": "clean", "metric": "sar_type1", "setting": "white-box;target;fmr=0.001"}
    f = evaluate_rule(inv, metrics([{**row, "value": 0.5, "ci_low": 0.02, "ci_high": 0.84}]), {"inversion"})
    assert f.status == "warn" and f.location["fail_not_excluded"] == 0.5
    assert "measured value, 0.5, reaches the fail limit itself: a fail cannot be excluded" in f.message
    # the value short of the fail limit, the upper end beyond it: said too
    leak = rule(use="ci_low")
    f2 = evaluate_rule(leak, metrics([{**LEAK[0], "value": 0.12, "ci_low": 0.06, "ci_high": 0.3}]), {"leakage"})
    assert f2.status == "warn" and f2.location["fail_not_excluded"] == 0.3 and "upper end" in f2.message
    # a warning whose whole interval stays short of the fail limit says nothing of the kind
    f3 = evaluate_rule(leak, metrics([{**LEAK[0], "value": 0.1, "ci_low": 0.07, "ci_high": 0.14}]), {"leakage"})
    assert f3.status == "warn" and "fail_not_excluded" not in f3.location
    frame = pd.DataFrame([{"pack": "p", "rule_id": x.rule.id, "status": x.status, "location": x.location,
                           "message": x.message} for x in (f, f2, f3)])
    assert list(fail_not_excluded(frame)) == [True, True, False]
    gate = judge(frame, "fail")
    assert gate.exit_code == 0 and list(gate.doubtful["rule_id"]) == ["ISO24745-IRREVERSIBILITY", "R1"]
    assert judge(frame, "warn").exit_code == 1


def test_a_pass_pooling_attributes_names_those_without_results():
    """A review of the rules: "[sex, skin_tone, race]" pools every attribute that exists, so on a dataset without a
    skin-tone or race column DEMO-FMR-PARITY passed on sex alone under a title naming both, and said nothing."""
    parity = next(r for r in load_pack("baseline").rules if r.id == "DEMO-FMR-PARITY")
    rows = [{"probe": "identity", "condition": "clean", "metric": "fmr_max_min", "attribute": "sex",
             "setting": "fmr=0.001", "value": 1.2, "ci_low": 1.0, "ci_high": 1.5},
            {"probe": "identity", "condition": "clean", "metric": "fmr", "setting": "fmr=0.001", "value": 0.001,
             "ci_low": 0.0008, "ci_high": 0.0012}]
    f = evaluate_rule(parity, metrics(rows), {"identity"})
    assert f.status == "pass" and f.location["no_result_for"] == ["skin_tone", "race"]
    assert "No result for skin_tone, race: this pass does not cover them." in f.message
    with_tone = rows + [{**rows[0], "attribute": "race"}]  # race stands for skin tone: nothing is missing
    g = evaluate_rule(parity, metrics(with_tone), {"identity"})
    assert g.status == "pass" and "no_result_for" not in g.location


@pytest.mark.parametrize("persons,judged", [(100, False), (125, True)])
def test_a_groups_fmr_disparity_rests_on_its_distinct_person_pairs(persons, judged):
    """An FMR disparity at overall FMR 1e-3 and a ratio of 2 needs 7,633 independent impostor units per group (the exact
    binomial interval must exclude twice the rate): 125 persons give 7,750 distinct pairs, 100 give 4,950. Counted in
    both directions (9,900 for 100 persons, before 0.6.0) a 100-person group passed on about 30% fewer persons than
    its pairs support; the rule of 30 counts each pair of persons once, and so does this check."""
    base = {"probe": "identity", "condition": "clean", "setting": "fmr=0.001"}
    rows = [{**base, "metric": "fmr_max_min", "attribute": "sex", "value": 1.1, "ci_low": 1.0, "ci_high": 1.3},
            {**base, "metric": "fmr", "value": 1e-3, "ci_low": 8e-4, "ci_high": 1.2e-3}]
    rows += [{**base, "metric": "group_persons", "attribute": "sex", "group": g, "value": float(persons),
              "ci_low": float(persons), "ci_high": float(persons)} for g in ("f", "m")]
    f = evaluate_rule(rule(probe="identity", metric="fmr_max_min", warn_if="> 2", fail_if="> 5", use="value"),
                      metrics(rows), {"identity"})
    if judged:
        assert f.status == "pass", f.message
    else:
        assert f.status == "not_applicable" and f.location["needs_persons"] == 125 - persons, f.message


def test_a_groups_fmr_disparity_counts_what_its_comparisons_are_worth():
    """A review of the statistics: a group's impostor pairs share persons, so its FMR's resamples vary as about half
    its person pairs would (the sample world: pairs / 2.0-2.3); the check counted the pairs, and 150 persons a group
    (11,175 pairs) passed where 7,633 independent comparisons are needed at FMR 1e-3 and a ratio of 2. Where the run
    stores what they are worth (``group_fmr_trials``) the check counts that, and asks for the persons whose pairs,
    worth as much a pair, would do."""
    base = {"probe": "identity", "condition": "clean", "setting": "fmr=0.001"}
    rows = [{**base, "metric": "fmr_max_min", "attribute": "sex", "value": 1.1, "ci_low": 1.0, "ci_high": 1.3},
            {**base, "metric": "fmr", "value": 1e-3, "ci_low": 8e-4, "ci_high": 1.2e-3}]
    rows += [{**base, "metric": "group_persons", "attribute": "sex", "group": g, "value": 150.0, "ci_low": 150.0,
              "ci_high": 150.0} for g in ("f", "m")]
    parity = rule(probe="identity", metric="fmr_max_min", warn_if="> 2", fail_if="> 5", use="value")
    assert evaluate_rule(parity, metrics(rows), {"identity"}).status == "pass"  # pairs alone: 11,175 > 7,633
    worth = [{**base, "metric": "group_fmr_trials", "attribute": "sex", "group": g, "value": v, "ci_low": v,
              "ci_high": v} for g, v in (("f", 5200.0), ("m", 9000.0))]
    f = evaluate_rule(parity, metrics(rows + worth), {"identity"})
    assert f.status == "not_applicable", f.message
    # 7,633 / (5,200 / 11,175) = 16,404 pairs: 182 persons, 32 more
    assert f.location["needs_persons"] == 32, f.location
    assert ("group 'f' of sex has 150 persons (11,175 person pairs, whose false matches vary as 5,200 independent "
            "comparisons would)") in f.message
    enough = [{**w, "value": 8000.0, "ci_low": 8000.0, "ci_high": 8000.0} for w in worth]
    assert evaluate_rule(parity, metrics(rows + enough), {"identity"}).status == "pass"
    # a group without false matches stores no worth (its resamples cannot say): it counts as its peers' least
    peer = [{**worth[1], "value": 5200.0, "ci_low": 5200.0, "ci_high": 5200.0}]  # group m worth 5,200; f has none
    zero = evaluate_rule(parity, metrics(rows + peer), {"identity"})
    assert zero.status == "not_applicable" and zero.location["needs_persons"] == 32, zero.message


def test_the_same_interval_on_fewer_persons_or_an_unsupported_target_never_reads_milder():
    """A review of the report: the same FMR ratio of 1.5 [0.6, 9.0] against "fail if > 5" was undecided (a fail not
    excluded) on 2,000 persons a group, but plain "not judged" on 40 (too few persons), so the strict gate opened and
    a signed statement said PASSED; likewise an inversion rate of 0.008 [0, 0.30] at an operating point the data
    cannot back. Every rule not judged although it has results now records the verdict its interval's end toward the
    limit does not exclude, as a pass must exclude it; an interval within the limits still records nothing."""
    from audit.evidence.gate import judge

    base = {"probe": "identity", "condition": "clean", "setting": "fmr=0.001"}
    parity = rule(probe="identity", metric="fmr_max_min", warn_if="> 2", fail_if="> 5", use="value")
    found = {}
    for persons in (2000, 40):
        rows = [{**base, "metric": "fmr_max_min", "attribute": "sex", "value": 1.5, "ci_low": 0.6, "ci_high": 9.0},
                {**base, "metric": "fmr", "value": 1e-3, "ci_low": 8e-4, "ci_high": 1.2e-3}]
        rows += [{**base, "metric": "group_persons", "attribute": "sex", "group": g, "value": float(persons),
                  "ci_low": float(persons), "ci_high": float(persons)} for g in ("f", "m")]
        found[persons] = f = evaluate_rule(parity, metrics(rows), {"identity"})
        assert f.status == "not_applicable" and f.location["undecided"] == "fail", (persons, f.message)
    assert "needs_persons" in found[40].location and found[40].location["other_end"] == 9.0
    assert found[40].message.endswith("The max upper end of the 95% CI, 9, reaches the fail limit (fail if > 5): a "
                                      "fail cannot be excluded.")
    inv = rule(probe="inversion", metric="sar_type1", where={"setting": "*;fmr=0.001*"}, warn_if="> 0.01",
               fail_if="> 0.10", use="value")
    sar = {"probe": "inversion", "condition": "clean", "metric": "sar_type1", "value": 0.008, "ci_low": 0.0,
           "ci_high": 0.30}
    for setting in ("white-box;fmr=0.001", "white-box;fmr=0.001;unsupported"):
        f = evaluate_rule(inv, metrics([dict(sar, setting=setting)]), {"inversion"})
        assert f.status == "not_applicable" and f.location["undecided"] == "fail", (setting, f.message)
    narrow = evaluate_rule(inv, metrics([dict(sar, setting="white-box;fmr=0.001;unsupported", ci_high=0.05)]),
                           {"inversion"})
    assert narrow.status == "not_applicable" and "undecided" not in narrow.location, narrow.message
    table = pd.DataFrame([{"rule_id": parity.id, "status": f.status, "location": f.location, "fail_if": "> 5"}
                          for f in (found[40],)] + [{"rule_id": "OTHER", "status": "pass", "location": {},
                                                     "fail_if": "> 5"}])  # one rule judged: the gate can open
    assert judge(table, "warn").exit_code == 1 and len(judge(table, "warn").blocking) == 1  # closed on it alone
    assert judge(table.drop(columns="location").assign(location=[{}, {}]), "warn").exit_code == 0


def test_a_result_without_a_number_such_as_an_attack_not_tried_cannot_exclude_a_fail():
    """A review of the change: with the white-box attack withdrawn (its torch backend failed parity) its rows are
    stored without a number, and a rule pooling every attack was "not judged" with nothing it could not exclude, so
    the strict gate opened on the black-box attack's 0.0 [0, 0.01]. The strongest attack is unknown: a fail is not
    excluded. Likewise the best-cloak rule when no white-box cloak could be made."""
    inv = rule(probe="inversion", metric="sar_type1", where={"condition": "mask:*", "setting": "*;fmr=0.001*"},
               warn_if="> 0.05", fail_if="> 0.20", use="ci_low")
    rows = [{"probe": "inversion", "condition": "mask:surgical", "metric": "sar_type1",
             "setting": "black-box;target;fmr=0.001", "value": 0.0, "ci_low": 0.0, "ci_high": 0.01},
            {"probe": "inversion", "condition": "mask:surgical", "metric": "sar_type1",
             "setting": "white-box;target;fmr=0.001", "value": float("nan"), "ci_low": float("nan"),
             "ci_high": float("nan")}]
    f = evaluate_rule(inv, metrics(rows), {"inversion"})
    assert f.status == "not_applicable" and f.location["undecided"] == "fail", f.message
    assert f.message.endswith("A result without a number to judge cannot exclude a fail.")
    assert evaluate_rule(inv, metrics(rows[:1]), {"inversion"}).status == "pass"  # tried, and weak: a pass
    cloak = [{"probe": "cloak", "condition": "cloak:best@8", "metric": "psr_at_1", "setting": "white-box",
              "value": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}]
    f = evaluate_rule(_pack_rule("baseline", "CLOAK-WHITEBOX-PROTECTS"), metrics(cloak), {"cloak"})
    assert f.status == "not_applicable" and f.location["undecided"] == "fail", f.message
