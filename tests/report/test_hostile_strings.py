"""Issue 11, class 2: dataset and vendor strings reach matplotlib, Jinja and SQL as data."""

import pandas as pd
import pytest

from audit.report import plots

HOSTILE = ["$\\frac{", "$x$ <b>&", "[/b]", "_hidden", "{{ 7*7 }}", "' OR 1=1 --"]


def rows(metric, probe, attribute="sex", setting="", condition="clean"):
    return pd.DataFrame([{"probe": probe, "condition": condition, "metric": metric, "attribute": attribute,
                          "group": g, "setting": setting, "value": 0.1 * (i + 1), "ci_low": 0.05 * (i + 1),
                          "ci_high": 0.2 * (i + 1), "n": 10} for i, g in enumerate(HOSTILE)])


def test_plot_labels_are_literal():
    m = pd.concat([rows("group_fmr", "identity"), rows("group_fnmr", "identity")])
    svg = plots.group_rates(m)
    assert "$\\frac{" in svg and "$x$ &lt;b&gt;&amp;" in svg and "{{ 7*7 }}" in svg
    svg = plots.compare_bars(pd.DataFrame({"label": HOSTILE, "value": [0.1] * 6, "ci_low": [0.0] * 6,
                                           "ci_high": [0.2] * 6}), "$title$ [/x]")
    assert "$title$ [/x]" in svg and "$\\frac{" in svg


def test_jinja_environment_autoescapes():
    from audit.report.render import environment

    env = environment()
    html = env.from_string("{{ x }}").render(x="<script>alert(1)</script>")
    assert "<script>" not in html and "&lt;script&gt;" in html
    for name in env.list_templates():
        if name.endswith((".html.j2", ".j2")):
            assert env.select_autoescape(name) if hasattr(env, "select_autoescape") else env.autoescape(name)


@pytest.mark.parametrize("ref", ["%", "_", "' OR 1=1 --", "2026%", "latest'; DROP TABLE runs; --"])
def test_run_references_are_parameters_not_patterns(tmp_path, ref):
    from audit.errors import StoreError
    from audit.store import Store

    with Store(tmp_path / "s.duckdb") as s:
        s.create_run("a" * 64, "b" * 64, {}, 0, {})
        with pytest.raises(StoreError, match="no run"):
            s.resolve_run(ref)
        assert len(s.runs()) == 1
