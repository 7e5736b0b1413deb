"""The comparison's page one: paired rows summarised per probe and model, counts that add up, the largest clear
differences first (rates before ratios)."""

from audit.compare import model_verdicts, summarise
from audit.compare.paired import outcome, verdict


def _row(probe, b, diff, lo, hi, ratio=1.0, a="A (1)"):
    words, _ = verdict(diff, lo, hi, 60, a, b)
    row = {"probe": probe, "metric": "fnmr", "a": a, "b": b, "diff": diff, "ci_low": lo, "ci_high": hi,
           "ratio": ratio, "verdict": words}
    return {**row, "outcome": outcome(row)}


def test_outcomes_are_read_from_the_verdict():
    assert _row("identity", "B (2)", 0.2, 0.1, 0.3)["outcome"] == "B higher"
    assert _row("identity", "B (2)", -0.2, -0.3, -0.1)["outcome"] == "A higher"
    assert _row("identity", "B (2)", 0.01, -0.05, 0.07)["outcome"] == "cannot be told apart"
    assert _row("identity", "B (2)", float("inf"), float("nan"), float("nan"))["outcome"] == "no finite difference"
    # an observed difference with an unbounded interval is not 'no difference observed'
    words, need = verdict(1.3, -2.1, float("inf"), 300, "A", "B")
    assert words == ("cannot be told apart with 300 persons (the interval is unbounded: in some resamples a group has "
                     "no errors)") and need is None
    assert verdict(0.0, -0.1, 0.1, 300, "A", "B")[0].endswith("(no difference observed)")


def test_summary_counts_add_up_and_lists_the_largest_clear_differences():
    rows = [_row("identity", "B (2)", 0.05, 0.01, 0.09), _row("identity", "B (2)", -0.30, -0.40, -0.20),
            _row("identity", "B (2)", 9.0, 2.0, 15.0, ratio=None),  # a ratio's difference: listed after rates
            _row("identity", "B (2)", 0.10, 0.02, 0.18), _row("identity", "B (2)", 0.01, -0.05, 0.07),
            _row("leakage", "B (2)", 0.02, -0.01, 0.05), _row("identity", "C (3)", 0.0, 0.0, 0.0),
            _row("leakage", "B (2)", 0.3, 0.2, 0.4, a="D (4)")]  # leakage's reference: another run (A ran none)
    summary = summarise(rows, top=3)
    assert [(s["probe"], s["a"], s["b"]) for s in summary] == [
        ("identity", "A (1)", "B (2)"), ("identity", "A (1)", "C (3)"), ("leakage", "A (1)", "B (2)"),
        ("leakage", "D (4)", "B (2)")]
    ident = summary[0]
    assert ident["measures"] == 5 and ident["counts"] == {"B higher": 3, "A higher": 1, "cannot be told apart": 1,
                                                           "no finite difference": 0}
    assert [r["diff"] for r in ident["largest"]] == [-0.30, 0.10, 0.05]  # by size; the ratio (9.0) comes last
    assert summary[2]["largest"] == []
    by_pair = {(m["a"], m["b"]): m for m in model_verdicts(summary)}
    assert set(by_pair) == {("A (1)", "B (2)"), ("A (1)", "C (3)"), ("D (4)", "B (2)")}  # never mixed references
    assert by_pair["A (1)", "B (2)"]["measures"] == 6
    assert by_pair["A (1)", "B (2)"]["counts"]["cannot be told apart"] == 2
    assert [s["probe"] for s in by_pair["A (1)", "B (2)"]["probes"]] == ["identity", "leakage"]
    assert by_pair["D (4)", "B (2)"]["counts"]["B higher"] == 1 and by_pair["A (1)", "C (3)"]["measures"] == 1


def test_differences_are_counted_as_riskier_or_safer_by_each_measure_direction():
    """B higher on an error rate (higher is riskier) makes B riskier; B higher on a TAR (lower is riskier) makes it
    safer; A higher reverses both; a measure without a direction (a chance level) is counted apart, and a difference
    that cannot be told apart counts in neither."""
    rows = [{**_row("identity", "B (2)", 0.05, 0.01, 0.09), "direction": "higher_is_riskier"},
            {**_row("identity", "B (2)", 0.05, 0.01, 0.09), "direction": "lower_is_riskier"},
            {**_row("identity", "B (2)", -0.05, -0.09, -0.01), "direction": "lower_is_riskier"},
            {**_row("identity", "B (2)", -0.05, -0.09, -0.01), "direction": "higher_is_riskier"},
            {**_row("identity", "B (2)", 0.05, 0.01, 0.09), "direction": "neutral"},
            {**_row("identity", "B (2)", 0.01, -0.05, 0.07), "direction": "higher_is_riskier"}]
    (m,) = model_verdicts(summarise(rows))
    assert m["risk"] == {"riskier": 2, "safer": 2, "no direction": 1}
    assert m["counts"]["B higher"] + m["counts"]["A higher"] == sum(m["risk"].values())


def test_directions_come_from_every_run_not_only_the_reference(tmp_path):
    """A reference without identity measures (an attribute classifier) left every identity difference without a
    direction, so none counted as riskier or safer (until 2026-12-05); the reference's own direction wins."""
    import pandas as pd

    from audit.report.render import run_directions
    from audit.store import Store

    def rows(run, metric, probe, direction):
        return {"run_id": run, "probe": probe, "condition": "clean", "metric": metric, "attribute": "", "group": "all",
                "setting": "", "value": 0.1, "ci_low": 0.0, "ci_high": 0.2, "n": 10, "direction": direction}

    with Store(tmp_path / "s.duckdb") as store:
        store.write("metrics", pd.DataFrame([rows("ref", "normalised_gain", "leakage", "higher_is_riskier"),
                                             rows("b", "fnmr", "identity", "higher_is_riskier"),
                                             rows("b", "normalised_gain", "leakage", "neutral")]))
        d = run_directions(store, ["ref", "b"], 0)
    assert d[("identity", "fnmr", "clean", "", "", "all")] == "higher_is_riskier"
    assert d[("leakage", "normalised_gain", "clean", "", "", "all")] == "higher_is_riskier"


def test_clean_fnmr_and_clean_tar_at_the_same_fmr_count_once():
    """Clean FNMR is one minus clean TAR at the same FMR: the same effect was counted twice as 'safer' (review F3).
    FNMR under another condition (the clean threshold against masked faces) is a measure of its own."""
    rows = [{**_row("identity", "B (2)", 0.2, 0.1, 0.3), "condition": "clean", "setting": "fmr=0.01",
             "direction": "lower_is_riskier"},
            {**_row("identity", "B (2)", -0.2, -0.3, -0.1), "metric": "tar_at_fmr", "condition": "clean",
             "setting": "fmr=0.01", "direction": "higher_is_riskier"},
            {**_row("identity", "B (2)", 0.2, 0.1, 0.3), "condition": "mask:surgical", "setting": "fmr=0.01",
             "direction": "neutral"}]
    (m,) = model_verdicts(summarise(rows))
    assert m["measures"] == 2 and m["merged"] == 1 and m["risk"] == {"riskier": 0, "safer": 1, "no direction": 1}


def test_a_disparity_paired_at_another_fmr_keeps_its_stored_direction():
    """A review of the comparison: fnmr_max_min is stored at the demographic FMR only but paired at every FMR the
    outcomes hold, so the same disparity counted 'riskier' at one FMR and 'no direction' at the other."""
    from audit.compare.paired import _direction

    stored = {("identity", "fnmr_max_min", "clean", "fmr=0.001", "sex", "all"): "higher_is_riskier",
              ("identity", "fnmr", "clean", "fmr=0.001", "", "all"): "lower_is_riskier",
              ("identity", "fnmr", "clean", "fmr=0.01", "", "all"): "neutral"}
    assert _direction(stored, ("identity", "fnmr_max_min", "clean", "fmr=0.01", "sex", "all")) == "higher_is_riskier"
    assert _direction(stored, ("identity", "fnmr_max_min", "mask:n95", "fmr=0.01", "sex", "all")) == "neutral"
    # two stored directions that disagree: none is guessed
    assert _direction(stored, ("identity", "fnmr", "clean", "fmr=0.1", "", "all")) == "neutral"
