"""The paired intervals hold the true difference between two models at least 92% of the time."""

import pytest

from audit.compare.coverage import coverage


@pytest.mark.slow
@pytest.mark.parametrize("metric,persons,reps", [("fnmr", 60, 300), ("fnmr", 200, 200), ("fmr", 60, 300),
                                                 ("fmr", 200, 300), ("tar", 60, 300), ("tar", 200, 200),
                                                 ("fnmr_threshold", 60, 300), ("fnmr_threshold", 200, 200),
                                                 ("gain", 60, 300), ("gain", 150, 200), ("group_fnmr", 60, 300),
                                                 ("group_fnmr", 200, 200)])
def test_paired_difference_intervals_cover_the_truth(metric, persons, reps):
    """FNMR differences (one outcome per genuine comparison), group-FMR differences (impostor comparisons
    between two persons, both sides weighed by one draw of persons; a person's effects on the two sides correlated
    as on real models, where a draw of each side apart covered 0.88 at 200 persons, 0.92 at 60) and TAR-at-FMR differences (each model's threshold chosen again on
    every replicate; held fixed they covered 0.88 at 60 persons) and FNMR as compare measures real runs (one minus
    the share at a threshold estimated from the impostor scores and chosen again on every replicate; held fixed,
    as before 2026-12-06, 0.89-0.91) and one group's FNMR at that threshold (half the persons; 0.97 / 0.945 at 60 /
    200 persons when added) against the simulation's known truth."""
    res = coverage(persons, reps, metric=metric)
    assert res["coverage"] >= 0.92, res
    assert res["mean_width"] < {"fnmr": 0.15, "fmr": 0.05, "tar": 0.2, "fnmr_threshold": 0.2, "gain": 0.45,
                                 "group_fnmr": 0.25}[metric], res


@pytest.mark.slow
def test_paired_leakage_differences_carry_the_attacker_fit_variance():
    """Two models with equal leakage, an attacker fitted per model: with the out-of-fold predictions held fixed the
    paired interval told them apart in 12.5% of datasets (150 persons; 13.3% at 60), as 'riskier' or 'safer'; with
    each attacker's fit variance added (audit.compare.paired.fit_widened) in 6% (nominal 5%), without intervals
    wider than the estimate's spread needs."""
    before = coverage(150, 200, n_boot=300, metric="gain_unwidened")
    after = coverage(150, 200, n_boot=300, metric="gain")
    assert before["coverage"] < 0.9 <= 0.93 <= after["coverage"], (before, after)
    assert after["mean_width"] < 1.2 * 2 * 1.96 * after["estimate_sd"], after


@pytest.mark.slow
@pytest.mark.parametrize("persons", [60, 200])
def test_paired_membership_differences_choose_thresholds_again(persons):
    """A review of the comparison: membership TPR differences held every fold's flags fixed (the thresholds chosen on
    a few dozen training non-members), so two models with equal TPR were told apart far more often than 1 in 20
    (coverage 0.875-0.88 here, 0.77-0.85 in the review's simulation). Read from the probe's cross-validation folds,
    each fold's threshold chosen again on every replicate, they cover 0.965 (AUC 0.935-0.945; 0.93-0.97 on 1,000
    datasets) for a score attack, whose folds fit nothing else, with intervals about as wide as the estimates' spread
    needs. Both attackers' fit variance added whatever the folds chose (0.5.0) made them 1.27 times too wide."""
    before = coverage(persons, 200, n_boot=300, metric="membership_tpr_fixed")
    after = coverage(persons, 200, n_boot=300, metric="membership_tpr")
    auc = coverage(persons, 200, n_boot=300, metric="membership_auc")
    assert before["coverage"] < 0.92 <= min(after["coverage"], auc["coverage"]), (before, after, auc)
    for res in (after, auc):
        assert res["mean_width"] < 1.2 * 2 * 1.96 * res["estimate_sd"], res
