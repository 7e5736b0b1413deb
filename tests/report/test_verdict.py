"""Page one is the verdict; rules not judged are one short list grouped by reason, not a row each."""

import json
import re

from audit import api
from audit.config import AuditConfig
from audit.report.narrative import not_judged_reason
from audit.store import Store


def test_page_one_says_what_is_wrong_and_what_was_not_tested(small_data, tiny_model, tmp_path):
    db = tmp_path / "s.duckdb"
    run_id = api.run_audit(AuditConfig(model=tiny_model, data=str(small_data), probes=["identity"],
                                       conditions=["clean", "mask:surgical"], bootstrap=20, parity=False), db)
    findings = api.evaluate_rules(run_id, db)
    html = api.build_report(run_id, db, tmp_path / "out", ["html"])[0].read_text()
    summary = html[html.index('id="summary"'):html.index('id="traceability"')]
    judged = findings[findings["status"] != "not_applicable"]
    bad = findings[findings["status"].isin(["fail", "warn"])]
    assert ("What is wrong." in summary) == (not bad.empty)
    assert "Probes not run: inversion, cloak, leakage." in summary  # in the registry's order
    n_na = int((findings["status"] == "not_applicable").sum())
    assert f"{n_na} of {len(findings)} rules not judged: " in summary and "because their probe did not run" in summary
    # the findings and traceability tables hold the judged rules only; the others are one list by reason
    table = summary[summary.index('<table class="findings"'):summary.index("</table>", summary.index(
        '<table class="findings"'))]
    assert len(re.findall(r'<span class="status ', table)) == len(judged)
    assert "not applicable" not in table
    assert "Rules not judged" in summary and "probe not run: leakage" in summary
    trace = html[html.index('id="traceability"'):html.index('id="system"')]
    assert ">not applicable<" not in trace


def test_reasons_for_not_judging_are_few_and_plain():
    def f(msg, probe="identity", where=None):
        return {"message": msg, "probe": probe, "location": {"where": where or {}}}

    assert not_judged_reason(f("The cloak probe did not run, so this rule cannot be judged.", "cloak")) == \
        "probe not run: cloak"
    assert not_judged_reason(f("No psr_at_1 result matched ...", "cloak", {"setting": "transfer:*"})) == \
        "cloak transfer not measured: no --surrogate model given"
    assert not_judged_reason(f("Too few persons to judge: group 'a' ...")).startswith("too few people")
    assert not_judged_reason(f("No fmr result matched ...")).startswith("no matching result")


def test_rules_the_engine_holds_back_are_listed_with_their_own_reason():
    """Each way the rules engine declines to pass (an interval reaching the limit, a result without an interval, an
    unsupported identity target) gets its own reason under 'Rules not judged', not 'no matching result'."""
    import pandas as pd

    from audit.rules.engine import Rule, evaluate_rule

    def judged(row, **kw):
        base = dict(id="R1", title="t", probe=row["probe"], metric=row["metric"], warn_if="> 0.05", fail_if="> 0.15",
                    use="ci_low")
        df = pd.DataFrame([{"run_id": "r", "condition": "clean", "attribute": "", "group": "all", "setting": "",
                            "n": 10, "direction": "neutral", **row}])
        f = evaluate_rule(Rule.model_validate({**base, **kw}), df, {row["probe"]})
        assert f.status == "not_applicable", f.message
        return not_judged_reason({"message": f.message, "probe": row["probe"], "location": f.location})

    leak = {"probe": "leakage", "metric": "normalised_gain", "attribute": "control"}
    assert judged({**leak, "value": 0.05, "ci_low": 0.0, "ci_high": 0.25}).startswith("too uncertain")
    assert judged({**leak, "value": 0.05, "ci_low": float("nan"), "ci_high": float("nan")}).startswith(
        "a result without a 95% interval")
    assert judged({"probe": "identity", "metric": "fmr_max_min", "attribute": "sex", "setting": "fmr=0.01;unsupported",
                   "value": 1.2, "ci_low": 1.0, "ci_high": 1.5}, warn_if="> 2", fail_if="> 5").startswith(
        "too few comparisons")


def test_page_one_names_the_group_most_falsely_matched_as_well_as_the_most_rejected():
    import pandas as pd

    from audit.report.narrative import verdict

    rows = [{"probe": "identity", "metric": m, "condition": "clean", "setting": "fmr=0.001", "attribute": "age",
             "group": g, "value": v, "ci_low": lo, "ci_high": hi}
            for m, g, v, lo, hi in (("group_fmr", "20-30", 0.0009, 0.0005, 0.0013), ("group_fmr", "61+", 0.0062, 0.004,
                                                                                      0.009),
                                    ("group_fnmr", "20-30", 0.02, 0.01, 0.04), ("group_fnmr", "61+", 0.03, 0.01, 0.06))]
    v = verdict(pd.DataFrame(columns=["status", "severity", "rule_id", "location"]), pd.DataFrame(rows), [], [], [])
    assert v["groups"] == ["age: group 61+ is falsely matched most (0.62%, 95% CI 0.40%–0.90%), group 20-30 least "
                           "(0.09%)."]  # FNMR intervals overlap: not named


def test_a_group_without_comparisons_is_neither_the_most_nor_the_least_matched():
    """A one-person group has no impostor pair of its own: its FMR is undefined (NaN, not 0), so page one does not
    pick it as the least matched and hide the disparity between the groups that were measured."""
    import numpy as np
    import pandas as pd

    from audit.metrics.stats import SubjectBootstrap
    from audit.report.narrative import verdict

    boot = SubjectBootstrap(np.array(["a", "b", "c"]), 50, 0, "t")
    est = boot.two_way(np.zeros((3, 3)), np.zeros((3, 3)))
    assert np.isnan(est.value) and np.isnan(est.ci_low) and est.n == 0
    rows = [{"probe": "identity", "metric": "group_fmr", "condition": "clean", "setting": "fmr=0.001",
             "attribute": "skin_tone", "group": g, "value": v, "ci_low": lo, "ci_high": hi}
            for g, v, lo, hi in (("a", 0.004, 0.002, 0.006), ("b", 0.02, 0.015, 0.026), ("c", np.nan, np.nan, np.nan))]
    v = verdict(pd.DataFrame(columns=["status", "severity", "rule_id", "location"]), pd.DataFrame(rows), [], [], [])
    assert v["groups"] == ["skin tone: group b is falsely matched most (2.00%, 95% CI 1.50%–2.60%), group a least "
                           "(0.40%)."]


def _meaning_on_page_one(status: str, metric: str, attribute: str, value: float, lo: float, hi: float) -> str:
    """Page one's sentence for one finding judged at the lower end against warn '< 0.95', fail '< 0.80'."""
    import pandas as pd

    from audit.report.narrative import verdict

    loc = {"condition": "clean", "attribute": attribute, "setting": "fmr=0.001", "value": value, "ci_low": lo,
           "ci_high": hi}
    f = {"pack": "p", "rule_id": "R", "title": "t", "status": status, "severity": "high", "metric": metric,
         "probe": "identity", "observed": lo, "message": "", "judged": "ci_low", "warn_if": "< 0.95",
         "fail_if": "< 0.80", "location": json.dumps(loc)}
    none = pd.DataFrame(columns=["probe", "metric", "condition", "attribute", "setting", "group", "value"])
    (p,) = verdict(pd.DataFrame([f]), none, [], [], [])["problems"]
    return p["meaning"]


def test_a_fairness_rule_flagged_by_its_intervals_end_says_the_value_itself_is_within_the_limit():
    """FDR rules judge the lower end against '< 0.95': a warning on FDR 0.995 [0.93, 0.999] comes from the interval,
    not the value, and page one must say so instead of stating that error rates differ."""
    assert _meaning_on_page_one("warn", "fdr", "sex", 0.995, 0.93, 0.999) == (
        "The fairness discrepancy rate between sex groups is 0.99 (95% CI 0.93 to 1.00; 1 = equal error rates). The "
        "measured value itself is within the rule's limit (< 0.95); the lower end of its 95% interval is not, so the "
        "data cannot rule the problem out.")
    # the value itself breaches: no such sentence
    assert "within the rule's limit" not in _meaning_on_page_one("warn", "fdr", "sex", 0.9, 0.85, 0.999)


def test_a_fail_resting_on_the_interval_alone_says_so_even_when_the_value_warns():
    """TAR 0.90 [0.70, 0.97] against warn '< 0.95', fail '< 0.80': the fail comes from the lower end only."""
    assert _meaning_on_page_one("fail", "tar_at_fmr", "", 0.90, 0.70, 0.97).endswith(
        "The measured value itself is within the rule's limit (< 0.80); the lower end of its 95% interval is not, so "
        "the data cannot rule the problem out.")


def test_tied_group_rates_name_no_most_and_least_group():
    import pandas as pd

    from audit.report.narrative import identity_verdicts

    base = {"probe": "identity", "condition": "clean", "setting": "fmr=0.001", "attribute": "sex"}
    rows = [{**base, "metric": m, "group": g, "value": v, "ci_low": v, "ci_high": v}
            for m, g, v in (("fdr", "all", 1.0), ("fnmr_max_min", "all", 1.0), ("group_fnmr", "f", 0.02),
                            ("group_fnmr", "m", 0.02))]
    text = identity_verdicts(pd.DataFrame(rows))[-1]
    assert "1.0 times the least's (95% CI 1.0 to 1.0)" in text and ": f " not in text and ", m " not in text
