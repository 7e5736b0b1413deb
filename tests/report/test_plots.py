"""Plots a signer reads: a missing or unbounded value is never drawn as a number it is not."""

import warnings

import numpy as np
import pandas as pd

from audit.report.plots import compare_bars


def test_comparison_bars_say_not_measured_and_no_upper_bound_instead_of_drawing_zero():
    rows = pd.DataFrame({"label": ["fr-a", "attr-model", "fr-b"], "value": [0.1, np.nan, np.inf],
                         "ci_low": [0.05, np.nan, 2.0], "ci_high": [0.2, np.nan, np.inf]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no matplotlib warnings from NaN or infinite bars
        svg = compare_bars(rows, "FNMR")
    assert "not measured" in svg and "no upper bound" in svg
    assert svg.count("<g id=\"patch_") - compare_bars(rows.iloc[:1], "FNMR").count("<g id=\"patch_") == 0
