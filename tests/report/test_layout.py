"""Layout helpers of the report: identifiers wrap only at separators, the input normalisation in words, probe notes
one a bullet with one number style, log ticks thinned, and the comparison's findings table kept on the page."""

import pytest

from audit.report import plots
from audit.report.render import breakable, environment, normalisation, probe_notes


def test_breakable_marks_separators_and_escapes_each_piece():
    assert str(breakable("inputs.attacker_model")) == "inputs.<wbr>attacker_<wbr>model"
    assert str(breakable("baseline")) == "baseline"  # a short name is never broken
    assert str(breakable("a&b;<x>")) == "a&amp;b;<wbr>&lt;x&gt;"  # no <wbr> inside an entity
    html = environment().from_string("{{ v | breakable }}").render(v="<script>x.y</script>")
    assert "<script>" not in html and "&lt;script&gt;x.<wbr>y&lt;/<wbr>script&gt;" == html


def test_normalisation_in_words():
    assert normalisation([127.5] * 3, [127.5] * 3) == "(x − 127.5) / 127.5 on every channel"
    assert normalisation([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) == \
        "(x − mean) / std per channel, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)"


def test_probe_notes_one_each_with_one_number_style():
    joined = ("FMR 0.0001 not supported: needs 9 more impostor person pairs (rule of 30) "
              "FMR 1e-05 not supported: needs 10 more impostor comparisons (rule of 30)")
    assert probe_notes([joined, "", None, "first.\nsecond (a) b."]) == [
        "FMR 1e-4 not supported: needs 9 more impostor person pairs (rule of 30)",
        "FMR 1e-5 not supported: needs 10 more impostor comparisons (rule of 30)",
        "first.", "second (a) b."]


def test_log_ticks_thinned_keep_first_and_largest():
    assert plots.thinned([1, 21, 41, 81, 161, 181]) == [1, 21, 41, 81, 181]
    assert plots.thinned([1, 10, 100]) == [1, 10, 100]


def test_compare_findings_table_fits_and_sentences_are_spaced():
    html = environment().get_template("compare.html.j2").render(
        runs=[], labels=["a (1)", "b (2)"], comparability=[], model_verdicts=[], summary=[], rows=[], plots=[],
        forests=[], reference="a (1)", beside=None, paired={"n_boot": 10, "persons": 5, "rows": [], "rankings": []},
        differences=[{"field": "inputs.attacker_model", "values": ["x", "y"]}],
        findings=[{"title": "t", "pack": "eu-ai-act", "rule_id": "AIA-15-ACCURACY", "statuses": ["pass", None],
                   "could_be": ["", ""]}])
    assert "holds 0. " in html and "holds 0.Below" not in html
    assert '<td class="mono ident">inputs.<wbr>attacker_<wbr>model</td>' in html
    assert '<table class="side-by-side">' in html and '<span class="mono pack">eu-ai-act ·</span>' in html
    css = environment().globals["css"]
    assert "break-all" not in css and "table.side-by-side { table-layout: fixed; }" in css


@pytest.mark.parametrize("n", [3, 41])
def test_short_comparison_tables_print_and_long_ones_are_left_to_their_attachments(n):
    """A few models on one probe (the demo's membership comparison: 6 paired differences, 2 rankings of 4 models)
    print their tables; past PRINTED_ROWS rows the print names the attached CSV instead (the HTML shows both)."""
    from audit.report.render import PRINTED_ROWS

    assert PRINTED_ROWS == 40
    row = {"probe": "membership", "metric": "membership_auc", "condition": "clean", "setting": "strongest",
           "attribute": "", "group": "all", "a": "a (1)", "b": "b (2)", "value_a": 0.6, "value_b": 0.5, "diff": -0.1,
           "ci_low": -0.2, "ci_high": -0.01, "ratio": None, "outcome": "A higher", "verdict": "a (1) higher",
           "persons_needed": None}
    ranking = {k: row[k] for k in ("probe", "metric", "condition", "setting", "attribute", "group")} | {
        "models": [{"rank": 1, "model": "a (1)", "value": 0.6, "rank_low": 1, "rank_high": 2}] * n, "pairs": []}
    html = environment().get_template("compare.html.j2").render(
        runs=[], labels=["a (1)", "b (2)"], comparability=[], model_verdicts=[], summary=[], rows=[], plots=[],
        forests=[], reference="a (1)", beside="cmp", findings=[],
        paired={"n_boot": 10, "persons": 5, "rows": [row] * n, "rankings": [ranking]})
    paired, ranks = html[html.index('id="paired"'):html.index('id="rankings"')], html[html.index('id="rankings"'):]
    for part, name in ((paired, "paired-differences.csv"), (ranks, "rankings.csv")):
        printed = n <= PRINTED_ROWS
        assert ('<div class="printed">' in part) == printed and ('<div class="detail">' in part) != printed
        assert (f"in full in <span class=\"mono\">{name}</span>" in part) != printed  # the print-only pointer
        assert f"cmp.{name}</span> beside this report" in part  # the screen's pointer to the CSV, always


def test_forest_marks_only_the_rows_whose_verdict_tells_the_models_apart():
    """A review of the comparison: the forest plot coloured a point red whenever its interval missed zero, so a
    disparity between groups too small to tell apart, and a measure at an unsupported operating point, showed as
    'differs' beside a table and a page one that counted them otherwise."""
    import pandas as pd

    from audit.report import plots

    def rows(outcome, setting):
        return pd.DataFrame([{"diff": 0.2, "ci_low": 0.1, "ci_high": 0.3, "label": "m", "outcome": outcome,
                              "setting": setting}])

    red = "#b2182b"
    assert red in plots.forest(rows("B higher", "fmr=0.001"), "t")
    assert red not in plots.forest(rows("cannot be told apart", "fmr=0.001"), "t")
    assert red not in plots.forest(rows("B higher", "fmr=0.001;unsupported"), "t")
