"""The paired intervals hold the true difference between two models at least 92% of the time."""

import pytest

from audit.compare.coverage import coverage


@pytest.mark.slow
@pytest.mark.parametrize("metric,persons,reps", [("fnmr", 60, 300), ("fnmr", 200, 200), ("fmr", 60, 300),
                                                 ("fmr", 200, 120)])
def test_paired_difference_intervals_cover_the_truth(metric, persons, reps):
    """FNMR differences (one outcome per genuine comparison) and group-FMR differences (impostor comparisons
    between two persons, both sides resampled) against the simulation's known truth."""
    res = coverage(persons, reps, metric=metric)
    assert res["coverage"] >= 0.92, res
    assert res["mean_width"] < (0.15 if metric == "fnmr" else 0.05), res
