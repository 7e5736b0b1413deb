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
    f = evaluate_rule(rule(where={"condition": "mask:surgical"}, use="ci_low"), metrics(LEAK), {"leakage"})
    assert f.status == "pass" and f.observed == pytest.approx(0.03)
    f = evaluate_rule(rule(where={"condition": "mask:surgical"}, use="value"), metrics(LEAK), {"leakage"})
    assert f.status == "warn"


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
