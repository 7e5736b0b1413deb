"""Fixes from the review of 'faceaudit compare' (/tmp/review_compare/FINDINGS.md), each on small real outcomes in an
in-memory store: rankings say which end is risky, and more."""

import numpy as np
import pytest

from audit.compare.paired import compare_runs
from audit.probes.base import ProbeResult, outcomes_artifact
from audit.report.render import compare_appendix, environment
from audit.run.results import write_result
from audit.store import Store


def _share(values, subjects, metric="fnmr", condition="clean", setting="fmr=0.01", groups=None, gallery=None):
    return outcomes_artifact("identity", np.arange(len(subjects)), np.asarray(subjects),
                             [{"metric": metric, "condition": condition, "setting": setting, "attribute": "",
                               "kind": "share", "values": np.asarray(values)}], groups, gallery)


def _compare(store, runs: dict, directions=None, **kw):
    for label, arts in runs.items():
        write_result(store, label, ProbeResult(artifacts=arts))
    return compare_runs(store, list(runs), list(runs), directions or {}, **kw)


def _render(paired, **extra):
    ctx = dict(runs=[], labels=list(paired.get("labels", ["A", "B"])), comparability=[], model_verdicts=[],
               summary=[], rows=[], plots=[], forests=[], reference="A", beside=None, findings=[], paired=paired)
    return environment().get_template("compare.html.j2").render(**{**ctx, **extra})


@pytest.mark.parametrize("direction,words", [
    ("lower_is_riskier", "Lower is riskier: rank 1 is the safest model"),
    ("higher_is_riskier", "Higher is riskier: rank 1 is the riskiest model"),
    ("neutral", "No risk direction: rank 1 is the highest value")])
def test_rankings_say_which_end_is_risky_for_every_direction(direction, words):
    """Clean FNMR is lower-is-riskier: the model that misses most (rank 1) is the safest. The rankings said rank 1
    was 'the riskiest model' for every error measure and their CSVs carried no direction."""
    subjects = np.repeat(np.arange(30), 3).astype(str)
    rng = np.random.default_rng(1)
    runs = {lab: [_share((rng.random(len(subjects)) < p).astype(int), subjects)]
            for lab, p in (("A", 0.05), ("B", 0.3), ("C", 0.6))}
    key = ("identity", "fnmr", "clean", "fmr=0.01", "", "all")
    with Store(":memory:") as s:
        res = _compare(s, runs, {key: direction}, n_boot=100)
    (rank,) = res["rankings"]
    assert rank["models"][0]["model"] == "C"
    html = _render(res)
    assert words in html and "for error and leakage measures, the riskiest model" not in html
    tables = compare_appendix({"paired": res})
    for name in ("rankings.csv", "rankings-pairwise.csv"):
        assert set(tables[name]["direction"]) == {direction}, name


@pytest.fixture(scope="module")
def profile_runs(tmp_path_factory):
    """fr-baseline audited twice on 20 synthetic people x 3 images (identity, clean): once under its own profile,
    once as the same file under a wrong one (std 1 instead of 127.5), which its preprocessing check refuses and
    --accept-profile overrides."""
    import shutil

    from audit import api
    from audit.config import AuditConfig
    from audit.synth import Recipe
    from audit.synth.dataset import materialise
    from tests.conftest import SAMPLE_MODELS

    root = tmp_path_factory.mktemp("profiles")
    data, _, _ = materialise(root / "data", Recipe(people=20, images=3), workers=1)
    bad = root / "bad" / "fr-baseline.onnx"
    bad.parent.mkdir()
    shutil.copy(SAMPLE_MODELS / "fr-baseline.onnx", bad)
    profile = (SAMPLE_MODELS / "fr-baseline.profile.yaml").read_text()
    wrong = profile.replace("std:\n  - 127.5\n  - 127.5\n  - 127.5", "std:\n  - 1.0\n  - 1.0\n  - 1.0", 1)
    assert wrong != profile
    bad.with_suffix(".profile.yaml").write_text(wrong)
    db = root / "s.duckdb"
    ids = [api.run_audit(AuditConfig(model=m, data=str(data), probes=["identity"], conditions=["clean"],
                                     bootstrap=50, parity=False, accept_profile=m == bad), db)
           for m in (SAMPLE_MODELS / "fr-baseline.onnx", bad)]
    return db, ids


def test_an_overridden_preprocessing_check_and_another_profile_are_said_on_page_one(profile_runs):
    """The same model file under a wrong profile, accepted with --accept-profile, was compared as 'only the models
    differ' with no word of the profile or of the failed check (and counted 'safer' for it)."""
    from audit.report.render import compare_context

    db, ids = profile_runs
    with Store(db, read_only=True) as s:
        ctx = compare_context(s, ids)
    assert [c["state"] for c in ctx["checks"]] == ["passed", "overridden"]
    assert ctx["overridden"] == [ctx["labels"][1]]
    (diff,) = ctx["profiles_differing"]
    assert diff["runs"] == ctx["labels"] and diff["sha256"] == ctx["runs"][0]["model_id"]
    html = environment().get_template("compare.html.j2").render(**ctx, beside=None)
    verdict = html[html.index('id="verdict"'):html.index('id="runs"')]
    assert "; only the models differ" not in verdict and "not only the models differ" in verdict
    assert "audited under different profiles" in verdict
    assert f"{ctx['labels'][1]} is no fair measure of its model" in verdict and "--accept-profile" in verdict
    runs = html[html.index('id="runs"'):]
    assert "<th>preprocessing check</th>" in runs and "passed (" in runs
