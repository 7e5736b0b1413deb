"""The paired intervals hold the true difference between two models at least 92% of the time."""

import pytest

from audit.compare.coverage import coverage


@pytest.mark.slow
@pytest.mark.parametrize("persons,reps", [(60, 300), (200, 200)])
def test_paired_difference_intervals_cover_the_truth(persons, reps):
    res = coverage(persons, reps)
    assert res["coverage"] >= 0.92, res
    assert res["mean_width"] < 0.15, res
