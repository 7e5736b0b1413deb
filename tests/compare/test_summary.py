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
