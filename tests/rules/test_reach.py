"""Issue 11, class 8 (and class 1's shipped-pack ids): packs that could never fire are refused at load."""

import textwrap

import pytest

from audit.errors import RuleError
from audit.rules import available_packs, load_pack

RULE = dict(id="R1", title="t", probe="leakage", metric="normalised_gain", warn_if="> 0.05", fail_if="> 0.15")


def pack(tmp_path, text: str):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def rule_pack(tmp_path, **kw):
    import yaml

    return pack(tmp_path, yaml.safe_dump({"pack": "mine", "rules": [{**RULE, **kw}]}))


@pytest.mark.parametrize("change, message", [
    ({"probe": "telepathy"}, "field 'probe': unknown probe 'telepathy'"),
    ({"probe": "identity"}, "field 'metric': the identity probe never stores 'normalised_gain'"),
    ({"where": {"condition": "mask:bandana"}}, "field 'where': unknown condition 'mask:bandana'"),
    ({"where": {"condition": "mask:band*"}}, "matches no mask"),
    ({"where": {"condition": "masked"}}, "matches no condition kind"),
    ({"where": {"condition": "cloak:magic@8"}}, "cloak:<method>@<eps>"),
    ({"where": {"condition": "cloak:pgd@8+purify:sepia"}}, "unknown purifier"),
    ({"where": {"condition": []}}, "empty list matches nothing"),
    ({"where": {"attribute": "subject"}}, "never an attribute"),
    ({"where": {"attribute": " sex"}}, "padded with spaces"),
    ({"warn_if": "> 0.2", "fail_if": "> 0.1"}, "can never warn"),
    ({"warn_if": "> 0.1", "fail_if": "> 0.1"}, "can never warn"),
    ({"warn_if": "< 0.9", "fail_if": "< 0.95"}, "can never warn"),
    ({"warn_if": "> 0.1", "fail_if": "< 0.5"}, "opposite directions"),
    # a setting the metric is never stored under: a typo, another probe's vocabulary, a rate not measured, a form
    # without its operating point
    ({"where": {"setting": "train=masked"}}, "field 'where': setting 'train=masked' matches nothing stored for "
                                             "normalised_gain, whose settings read '(train=same|train=clean)' or "
                                             "'direct'"),
    ({"where": {"setting": ["train=same", "fmr=0.001"]}}, "setting 'fmr=0.001' matches nothing"),
    ({"probe": "identity", "metric": "fnmr", "where": {"setting": "fmr=5e-3"}}, "setting 'fmr=0.005' matches nothing"),
    ({"probe": "identity", "metric": "eer", "where": {"setting": "fmr=0.001"}}, "whose settings read '' (none)"),
    ({"probe": "inversion", "metric": "sar_type1", "where": {"setting": "black-box;fmr=0.001"}},
     "'(white-box|query|black-box|random-face);(target|evaluator);fmr=0.001|0.01[;unsupported]'"),
    ({"probe": "inversion", "metric": "sar_type1", "where": {"setting": "blackbox;*"}}, "matches nothing"),
    ({"probe": "cloak", "metric": "psr_at_tau", "where": {"setting": "white-box"}}, "matches nothing"),
    ({"probe": "membership", "metric": "membership_tpr_at_fpr", "where": {"setting": "strongest;fpr=0.05"}},
     "matches nothing"),
])
def test_rules_that_can_never_fire_are_errors(tmp_path, change, message):
    with pytest.raises(RuleError, match="rule R1") as err:
        load_pack(rule_pack(tmp_path, **change))
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("where", [{"condition": "mask:*"}, {"condition": ["clean", "sunglasses", "patch:0.3"]},
                                   {"condition": "cloak:opom-affine@8+purify:jpeg75"}, {"condition": "cloak:*"},
                                   {"condition": "*"}, {"attribute": ["sex", "eye_colour"]}])
def test_reachable_where_values_load(tmp_path, where):
    assert load_pack(rule_pack(tmp_path, where=where)).rules[0].where == where


@pytest.mark.parametrize("probe, metric, setting", [
    ("leakage", "accuracy", "train=*"), ("leakage", "accuracy", "direct"),
    ("identity", "fnmr", "fmr=0.0001"), ("identity", "fnmr", "fmr=0.01;unsupported"), ("identity", "eer", ""),
    ("identity", "fnmr", "*"), ("inversion", "sar_type1", "*;fmr=0.001*"), ("inversion", "sar_type2", "query;e*;*"),
    ("inversion", "inversion_rank1", "white-box;target"), ("inversion", "ssim", "random-face"),
    ("cloak", "psr_at_1", "transfer:my-surrogate"), ("cloak", "psr_at_1", "transfer:ensemble(*)"),
    ("cloak", "psr_at_tau", "transfer:vendor?;fmr=0.001;unsupported"), ("cloak", "psr_at_1", "*ensemble*"),
    ("cloak", "linf", "tr*:arcface_r50"), ("cloak", "psr_at_5", "?ransfer:x"), ("cloak", "psr_at_1", "*:arcface*"),
    ("cloak", "psr_at_tau", "*ensemble*;fmr=0.001"),
    ("membership", "membership_auc", "spread@reference"), ("membership", "membership_fpr", "[sl]*;fpr=0.1"),
    ("membership", "membership_nonmembers_needed", "fpr=0.001"), ("acquisition", "fta_rate", ""),
])
def test_settings_a_probe_stores_load(tmp_path, probe, metric, setting):
    load_pack(rule_pack(tmp_path, probe=probe, metric=metric, where={"setting": setting}))


def test_setting_vocabulary_is_the_probes_own():
    """The forms rule packs are checked against name the probes' own constants and cover every catalogued metric."""
    from audit.metrics.catalogue import METRICS
    from audit.metrics.verification import FMR_TARGETS
    from audit.probes import inversion, membership
    from audit.rules import reach

    assert set(reach.SETTING_FORMS) == set(METRICS)
    assert reach.IDENTITY_FMRS == FMR_TARGETS and set(reach.INVERSION_FMRS) == set(inversion.FMRS)
    assert reach.MEMBERSHIP_FPRS == membership.FPR_TARGETS
    assert set(reach.SLOTS["attack"]) == set(inversion.THREAT_MODELS)
    assert set(reach.SLOTS["membership_attack"]) == {*membership.SCORES, *(f"{s}@reference" for s in membership.SCORES),
                                                     *membership.FITTED}


def test_warn_then_fail_in_order_loads(tmp_path):
    for w, f in [("> 0.05", "> 0.15"), (">= 0.1", "> 0.1"), ("< 0.9", "< 0.5"), ("<= 0.5", "< 0.5")]:
        load_pack(rule_pack(tmp_path, warn_if=w, fail_if=f))


def test_duplicate_yaml_keys_are_errors(tmp_path):
    p = pack(tmp_path, """\
        pack: mine
        rules:
          - id: R1
            title: t
            probe: leakage
            metric: normalised_gain
            fail_if: "> 0.5"
            fail_if: "> 0.1"
        """)
    with pytest.raises(RuleError, match=r"duplicate key 'fail_if' \(first at line 7\)"):
        load_pack(p)


def test_a_user_pack_cannot_take_a_shipped_id(tmp_path):
    shipped = available_packs()[0]
    text = shipped.read_text()
    copy = tmp_path / "copy.yaml"
    copy.write_text(text)
    assert load_pack(copy).pack == load_pack(shipped).pack  # an identical copy is the shipped pack
    copy.write_text(text + "\n# edited\n")
    with pytest.raises(RuleError, match="is the id of a shipped pack"):
        load_pack(copy)


def test_every_shipped_pack_can_fire():
    for path in available_packs():
        assert load_pack(path).rules


def test_two_packs_with_one_id_are_refused(tmp_path):
    from audit.rules.engine import load_packs

    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(yaml_pack := "pack: mine\nrules:\n  - {id: R1, title: t, probe: leakage, metric: normalised_gain, "
                               "fail_if: '> 0.5'}\n")
    b.write_text(yaml_pack.replace("0.5", "0.4"))
    with pytest.raises(RuleError, match="is also the id of"):
        load_packs([str(a), str(b)])
    assert len(load_packs([str(a), str(a)])) == 1
    assert len(load_packs(["baseline", "baseline"])) == 1
