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
