"""Paired comparisons of models on the same persons: known answers with planted differences."""

import shutil

import numpy as np
import pytest

from audit import api
from audit.config import AuditConfig
from audit.report.render import compare_context
from audit.store import Store
from audit.synth import Recipe
from audit.synth.dataset import materialise
from tests.builders import degrade_onnx
from tests.conftest import SAMPLE_MODELS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """60 synthetic people x 4 images; fr-baseline and two copies whose embeddings are degraded (noise added by a
    wrapper graph, alpha 0.5 and 1.0); each audited once (identity, clean and surgical mask)."""
    root = tmp_path_factory.mktemp("cmp")
    data, _, _ = materialise(root / "data", Recipe(people=60, images=4), workers=1)
    base = SAMPLE_MODELS / "fr-baseline.onnx"
    models = {"base": base}
    for alpha in (0.5, 1.0):
        dst = degrade_onnx(base, root / f"degraded-{alpha}.onnx", alpha)
        shutil.copy(SAMPLE_MODELS / "fr-baseline.profile.yaml", dst.with_suffix(".profile.yaml"))
        models[f"deg{alpha}"] = dst
    db = root / "s.duckdb"
    ids = {}
    for name, path in [*models.items(), ("base-again", base)]:
        cfg = AuditConfig(model=path, data=str(data), probes=["identity"], conditions=["clean", "mask:surgical"],
                          bootstrap=200, parity=False)
        ids[name] = api.run_audit(cfg, db)
    return db, ids, data, models


def _row(ctx, metric, condition, b_suffix=None):
    rows = [r for r in ctx["paired"]["rows"] if r["metric"] == metric and r["condition"] == condition
            and r["group"] == "all" and (b_suffix is None or r["b"].endswith(f"({b_suffix})"))]
    assert len(rows) == 1, rows
    return rows[0]


def test_a_model_against_itself_differs_by_nothing(world):
    db, ids, _, _ = world
    with Store(db, read_only=True) as s:
        ctx = compare_context(s, [ids["base"], ids["base-again"]])
    assert ctx["differences"] == [] and ctx["paired"]["rows"]
    for r in ctx["paired"]["rows"]:
        if r["metric"].endswith("_max_min") and np.isinf(r["value_a"]):
            assert r["value_a"] == r["value_b"] and r["verdict"].startswith("no finite difference")
            continue
        assert r["diff"] == 0 and r["ci_low"] <= 0 <= r["ci_high"], str([r[k] for k in ("metric", "condition", "group", "value_a", "diff", "ci_low")])
        assert r["verdict"].startswith(("cannot be told apart", "too few persons to tell apart"))  # a small group


def test_a_degraded_copy_is_found_worse_paired_where_unpaired_intervals_overlap(world):
    db, ids, _, _ = world
    with Store(db, read_only=True) as s:
        ctx = compare_context(s, [ids["base"], ids["deg0.5"]])
        ma, mb = s.metrics(ids["base"]), s.metrics(ids["deg0.5"])
    r = _row(ctx, "fnmr", "mask:surgical")
    assert r["value_b"] > r["value_a"] and r["ci_low"] > 0, r
    assert r["verdict"] == f"{r['b']} higher"
    pick = lambda m: m[(m["metric"] == "fnmr") & (m["condition"] == "mask:surgical")  # noqa: E731
                       & (m["setting"] == r["setting"])].iloc[0]
    a, b = pick(ma), pick(mb)
    assert b["ci_low"] < a["ci_high"], "the unpaired intervals overlap: only the paired comparison tells them apart"
    assert r["ratio"] > 1 and r["ratio_low"] <= r["ratio"] <= r["ratio_high"]
    # TAR at FMR is paired with each model's threshold chosen again on every replicate; its point values are the
    # stored ones
    for r in (x for x in ctx["paired"]["rows"] if x["metric"] == "tar_at_fmr"):
        for m, v in ((ma, r["value_a"]), (mb, r["value_b"])):
            stored = m[(m["metric"] == "tar_at_fmr") & (m["condition"] == r["condition"])
                       & (m["setting"] == r["setting"])]
            assert len(stored) == 1 and stored["value"].iloc[0] == pytest.approx(v, abs=1e-9), r
        assert r["ci_low"] <= r["diff"] <= r["ci_high"]
    # group FNMR rows and the max/min differential come from the same outcomes, for each attribute
    assert any(x["metric"] == "group_fnmr" and x["attribute"] == "sex" for x in ctx["paired"]["rows"])
    assert any(x["metric"] == "fnmr_max_min" and x["attribute"] == "sex" for x in ctx["paired"]["rows"])


def test_group_fmr_is_paired_on_both_sides_of_the_comparison(world):
    """Per-group FMR compares two persons: its paired rows resample probe and gallery persons; the point values
    are the stored group FMRs, the max/min differential comes from them, and a model against itself holds 0."""
    db, ids, _, _ = world
    with Store(db, read_only=True) as s:
        same = compare_context(s, [ids["base"], ids["base-again"]])
        ctx = compare_context(s, [ids["base"], ids["deg1.0"]])
        ma, mb = s.metrics(ids["base"]), s.metrics(ids["deg1.0"])
    rows = [r for r in ctx["paired"]["rows"] if r["metric"] == "group_fmr"]
    assert {(r["condition"], r["group"]) for r in rows} >= {(c, g) for c in ("clean", "mask:surgical")
                                                           for g in ("female", "male")}
    for r in rows:
        for m, v in ((ma, r["value_a"]), (mb, r["value_b"])):
            stored = m[(m["metric"] == "group_fmr") & (m["condition"] == r["condition"]) & (m["group"] == r["group"])
                       & (m["attribute"] == r["attribute"]) & (m["setting"] == r["setting"])]
            assert len(stored) == 1 and stored["value"].iloc[0] == pytest.approx(v), r
        assert r["ci_low"] <= r["diff"] <= r["ci_high"] or not np.isfinite(r["diff"])
    assert any(r["metric"] == "fmr_max_min" and r["attribute"] == "sex" for r in ctx["paired"]["rows"])
    for r in (x for x in same["paired"]["rows"] if x["metric"] == "group_fmr"):
        assert r["diff"] == 0 and r["ci_low"] <= 0 <= r["ci_high"], r


def test_rankings_order_three_models_with_rank_intervals_and_holm_verdicts(world):
    db, ids, _, _ = world
    with Store(db, read_only=True) as s:
        ctx = compare_context(s, [ids["base"], ids["deg0.5"], ids["deg1.0"]], reference=0)
        html = api.compare([ids["base"], ids["deg0.5"], ids["deg1.0"]], db, db.parent / "out", ["html"],
                           reference=ids["base"])[0].read_text()
    rank = next(k for k in ctx["paired"]["rankings"] if k["metric"] == "fnmr" and k["condition"] == "mask:surgical"
                and k["group"] == "all")
    order = [m["model"] for m in rank["models"]]
    assert order[0].endswith(f"({ids['deg1.0'][-6:]})") and order[-1].endswith(f"({ids['base'][-6:]})")
    assert all(m["rank_low"] <= m["rank"] <= m["rank_high"] for m in rank["models"])
    assert len(rank["pairs"]) == 3 and all(0 <= p["p_holm"] <= 1 for p in rank["pairs"])
    assert "Every paired difference" in html and "Rankings" in html and "<svg" in html


def test_runs_on_different_datasets_say_so_at_the_top(world, small_data, tmp_path):
    db, ids, _, models = world
    other = api.run_audit(AuditConfig(model=models["base"], data=str(small_data), probes=["identity"],
                                      conditions=["clean", "mask:surgical"], bootstrap=200, parity=False), db)
    with Store(db, read_only=True) as s:
        ctx = compare_context(s, [ids["base"], other])
    assert "dataset" in {d["field"] for d in ctx["differences"]} and ctx["paired"] is None
    html = api.compare([ids["base"], other], db, tmp_path / "out", ["html"])[0].read_text()
    top = html[html.index('id="verdict"'):html.index('id="runs"')]  # page one
    assert "These runs are not comparable" in top and "dataset" in top


def test_runs_that_are_not_comparable_get_no_paired_statistics(world, tmp_path):
    db, ids, data, models = world
    other = api.run_audit(AuditConfig(model=models["base"], data=str(data), probes=["identity"],
                                      conditions=["clean"], bootstrap=200, parity=False, seed=3), db)
    with Store(db, read_only=True) as s:
        ctx = compare_context(s, [ids["base"], other])
    fields = {d["field"] for d in ctx["differences"]}
    assert {"seed", "conditions"} <= fields and ctx["paired"] is None
    html = api.compare([ids["base"], other], db, tmp_path / "out", ["html"])[0].read_text()
    assert "These runs are not comparable" in html and "Paired differences" not in html


def test_inversion_and_cloak_outcomes_are_paired_too(small_data, tmp_path):
    """Two tiny models audited with inversion and cloak: SAR type I (black-box on every victim, white-box on its
    subset) and every cloak's PSR@1 get paired rows on the same victims and queries."""
    from tests.builders import make_onnx

    db = tmp_path / "s.duckdb"
    ids = [api.run_audit(AuditConfig(model=make_onnx(tmp_path / f"m{i}.onnx", seed=i), data=str(small_data),
                                     probes=["inversion", "cloak"], conditions=["clean"], bootstrap=50, parity=False),
                         db) for i in range(2)]
    with Store(db, read_only=True) as s:
        ctx = compare_context(s, ids)
        psr_tau = s.metrics(ids[0]).query("metric == 'psr_at_tau'")["setting"]
        notes = " ".join(s.probes(ids[0])["message"])
    # the cloak's system threshold at FMR 1e-3 on a few dozen people: measured, labelled unsupported, explained
    assert len(psr_tau) and psr_tau.str.endswith(";fmr=0.001;unsupported").all()
    assert "System threshold: FMR 0.001 not supported" in notes
    assert all(not c["blocking"] for c in ctx["comparability"])
    rows = ctx["paired"]["rows"]
    sar = {r["setting"]: r for r in rows if r["metric"] == "sar_type1"}
    # 20 victims: too few person pairs for any FMR by the rule of 30; still measured, and still paired
    bb, wb = "black-box;target;fmr=0.01;unsupported", "white-box;target;fmr=0.01;unsupported"
    assert {bb, wb} <= set(sar)
    assert sar[wb]["persons"] <= sar[bb]["persons"]
    with Store(db, read_only=True) as s:  # the paired values are the stored SARs (thresholds chosen as the probe does)
        for i, side in ((0, "value_a"), (1, "value_b")):
            m = s.metrics(ids[i]).query("metric == 'sar_type1' and condition == 'clean'").set_index("setting")["value"]
            assert all(m[k] == pytest.approx(r[side], abs=1e-9) for k, r in sar.items()), (i, m, sar)
    psr = [r for r in rows if r["metric"] == "psr_at_1"]
    assert {"clean", "cloak:opom-affine@8", "cloak:opom-affine@8+purify:jpeg75"} <= {r["condition"] for r in psr}
    assert all(r["ci_low"] <= r["diff"] <= r["ci_high"] for r in rows)


def test_membership_outcomes_are_paired_per_person(tmp_path):
    """fr-baseline audited twice on a small planted membership set: the strongest attack's AUC (from its
    cross-validation folds) and its TPR at FPR 0.1 (over member persons) get paired rows that equal the stored
    metrics and, a model against itself, differ by exactly 0; fr-private against it gets a real interval. The
    comparison's headline carries the membership AUC, and its findings table only the rules judged for a run."""
    from audit.synth import MembershipRecipe

    data, _, _ = materialise(tmp_path / "members", MembershipRecipe(members=30, nonmembers=30, images=3), workers=1)
    db = tmp_path / "s.duckdb"
    ids = [api.run_audit(AuditConfig(model=SAMPLE_MODELS / f"{name}.onnx", data=str(data), probes=["membership"],
                                     conditions=["clean"], bootstrap=100, parity=False), db)
           for name in ("fr-baseline", "fr-baseline", "fr-private")]
    for run_id in ids:
        api.evaluate_rules(run_id, db)
    with Store(db, read_only=True) as s:
        stored = s.metrics(ids[0])
        findings = [s.findings(r) for r in (ids[0], ids[2])]
        same = compare_context(s, ids[:2])
        other = compare_context(s, [ids[0], ids[2]])
    assert all(not c["blocking"] for c in same["comparability"])
    rows = {r["metric"]: r for r in same["paired"]["rows"]}
    assert set(rows) == {"membership_auc", "membership_tpr_at_fpr"}
    assert rows["membership_tpr_at_fpr"]["setting"] == "strongest;fpr=0.1;unsupported"  # 30 non-members
    for metric, r in rows.items():
        want = stored[(stored["metric"] == metric) & (stored["setting"] == r["setting"])]["value"].item()
        assert r["value_a"] == pytest.approx(want) and r["persons"] == (60 if metric == "membership_auc" else 30)
        assert r["diff"] == 0 and r["ci_low"] == 0 == r["ci_high"], r
    auc = next(r for r in other["paired"]["rows"] if r["metric"] == "membership_auc")
    assert auc["ci_low"] < auc["diff"] < auc["ci_high"] and auc["ci_high"] - auc["ci_low"] > 0.02
    # Headline: the strongest attack's AUC of each run; its TPR at FPR 0.1 only where 0.1 is supported (not here)
    assert [r["label"] for r in other["rows"]] == ["Membership AUC, strongest attack"]
    assert other["rows"][0]["cells"][0]["value"] == pytest.approx(
        stored[(stored["metric"] == "membership_auc") & (stored["setting"] == "strongest")]["value"].item())
    # Findings side by side: a rule judged for neither run (every identity, leakage, ... rule) is counted, not listed,
    # unless a run's data cannot exclude a warning or a failure (then it says "could be")
    from audit.evidence.gate import undecided

    judged = {f.rule_id for df in findings for f in df.itertuples() if f.status != "not_applicable"}
    judged |= {f.rule_id for df in findings for f, lv in zip(df.itertuples(), undecided(df)) if isinstance(lv, str)}
    every = {f.rule_id for df in findings for f in df.itertuples()}
    assert {f["rule_id"] for f in other["findings"]} == judged
    assert other["unjudged_rules"] == len(every - judged) > 20
    # 30 + 30 persons: the AUC's interval reaches MEMB-AUC's limits, so the rule is held back ("too uncertain"),
    # never passed
    memb = [f for df in findings for f in df.itertuples() if f.rule_id == "MEMB-AUC"]
    assert len(memb) == 2 and all(f.status != "pass" for f in memb)
    assert all(f.status != "not_applicable" or f.message.startswith("Too uncertain to judge") for f in memb)
