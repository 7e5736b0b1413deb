"""Intervals that cover: nominal 95% intervals hold the known truth at least 92% of the time."""

import numpy as np
import pytest

from audit.probes.coverage import coverage
from audit.metrics.stats import SubjectBootstrap, auc_trials, clopper_pearson, expanded_alpha


@pytest.mark.slow
@pytest.mark.parametrize("simulator,persons,reps", [
    ("fnmr", 60, 300), ("fnmr", 200, 300), ("fmr", 60, 300), ("fmr", 200, 300), ("psr", 60, 300), ("psr", 200, 300),
    ("leakage", 60, 300), ("leakage", 200, 200),
    ("identity", 30, 200), ("identity", 60, 200), ("identity", 200, 120), ("identity_small_group", 120, 200),
    ("inversion", 60, 300), ("inversion", 150, 150), ("identity_estimated_threshold", 60, 200)])
def test_nominal_95_intervals_cover_the_truth(simulator, persons, reps):
    """Every interval a rule reads, computed by the probes' own code, holds the known truth at least 92% of the
    time, at 30-200 persons and for a 5-person group; the identity rows include EER, ROC AUC and group rates, the
    inversion row SAR type I at the victims' FMR 1e-2 threshold (held fixed instead, it covered 0.917 at 60). The group
    rates hold the demographic threshold fixed on every resample: at the threshold the sample gives (as in a run)
    they still cover the rates at the population's threshold (0.99-1.00 at 60 persons: the threshold pins the whole
    sample's FMR, so the groups' rates vary less than at a known threshold)."""
    rows = [r for r in coverage(simulator, persons, reps) if "held fixed" not in r["metric"]]  # a reference row
    assert rows
    for res in rows:
        assert res["coverage"] >= 0.92, res
        # and not by being uselessly wide: a rate interval stays well inside [0, 1] (a 5-person group's cannot)
        if not res["metric"].endswith(":small"):
            assert res["mean_width"] < (0.5 if res["metric"] == "leakage_normalised_gain" else 0.25), res
    if simulator == "identity_small_group":
        small = next(r for r in rows if r["metric"] == "group_fnmr:small")
        assert small["coverage"] >= 0.95  # before the group's own floor: 0.61, every miss below the truth


@pytest.mark.slow
def test_membership_intervals_cover_the_truth_on_new_persons():
    """The membership probe's own cross-validation (5 stratified folds x 2 repeats) and interval code on 60 members
    and 60 non-members with a planted signal (audit/probes/coverage.py): AUC, balanced accuracy and TPR at FPR 0.1
    of the strongest, a score (tightness) and the learned attack hold the truth on new persons at least 92% of the
    time (the same 200 datasets as benchmarks/coverage.py). Before every threshold was chosen again on each person
    resample, the single attacks' TPR covered 0.905 here (0.88 at 200 + 200)."""
    rows = {r["metric"]: r for r in coverage("membership", 60, 200)}
    assert len(rows) == 9
    for metric, res in rows.items():
        assert res["coverage"] >= 0.92, res
        # not uselessly wide: 60 members make a TPR interval about 0.33 wide at best (3.92 sd of the estimates)
        assert res["mean_width"] < (0.5 if metric.startswith("membership_tpr") else 0.3), res
    # Nor wider than needed: a score attack's AUC (tightness fits nothing) is at most 1.2 times the width the estimates'
    # own spread calls for (3.92 sd; measured 1.11). Before its binomial floor counted the Hanley-McNeil trials of
    # the member x non-member pairs (not the smaller class) and before only fitted attacks were widened, it was 1.50:
    # a lower end judged by MEMB-AUC that low passes models it should not.
    auc = rows["membership_auc:tightness"]
    assert auc["mean_width"] < 1.2 * 3.92 * auc["estimate_sd"], auc


def test_auc_trials_match_the_spread_of_auc_on_independent_units():
    """Hanley & McNeil's variance, as binomial trials: at chance with n + n units it is exactly
    (1/4 + (n - 1)/6) / n^2 (so 89.3 trials for 60 + 60, 1.5 times the smaller class); and the spread of the AUC
    over 3,000 simulated datasets (binormal scores, 60 positives, 60 or 300 negatives) is what A(1 - A) / trials
    says at chance, and at most 20% less away from it (Hanley-McNeil's exponential model is a little conservative
    for binormal scores: a floor, not the interval)."""
    n = 60
    assert auc_trials(0.5, n, n) == pytest.approx(0.25 / ((0.25 + (n - 1) / 6) / n**2))
    assert auc_trials(0.3, n, 2 * n) == pytest.approx(auc_trials(0.7, n, 2 * n))
    assert auc_trials(1.0, n, n) > auc_trials(0.9, n, n) > auc_trials(0.6, n, n) > 1.4 * n
    rng = np.random.default_rng(11)
    for shift, negatives in ((0.0, 60), (0.4, 60), (1.2, 60), (2.0, 60), (0.4, 300)):
        pos, neg = rng.normal(shift, 1, (3000, n)), rng.normal(0, 1, (3000, negatives))
        auc = (pos[:, :, None] > neg[:, None, :]).mean((1, 2))
        a = auc.mean()
        ratio = (a * (1 - a) / auc_trials(a, n, negatives)) / np.var(auc)
        assert 0.95 < ratio < 1.2, (shift, negatives, ratio)


def test_rates_at_zero_and_one_never_get_zero_width():
    subjects = np.repeat(np.arange(12), 3)
    boot = SubjectBootstrap(subjects, 200, 0)
    zero = boot.estimate(lambda i: 0.0 * len(i), rate=True)
    one = boot.estimate(lambda i: 1.0, rate=True)
    assert zero.ci_low == 0 and zero.ci_high == pytest.approx(clopper_pearson(0.0, 12)[1]) and zero.ci_high > 0.2
    assert one.ci_high == 1 and one.ci_low == pytest.approx(clopper_pearson(1.0, 12)[0]) and one.ci_low < 0.8


def test_expanded_percentile_widens_small_samples_only():
    assert expanded_alpha(0.05, 10) < expanded_alpha(0.05, 60) < expanded_alpha(0.05, 1000) < 0.05
    assert expanded_alpha(0.05, 100000) == pytest.approx(0.05, abs=1e-3)


def test_two_way_resamples_both_sides():
    """FMR with gallery-person effects: two-way intervals are wider than probe-only ones."""
    rng = np.random.default_rng(3)
    subjects = np.repeat(np.arange(80), 3)
    g = rng.normal(0, 0.5, 80)
    scores = rng.normal(0, 0.7, (len(subjects), 80)) + g[None, :]
    impostor = subjects[:, None] != np.arange(80)[None, :]
    accepted = (scores > 1.6) & impostor
    boot = SubjectBootstrap(subjects, 300, 1)
    gallery = np.arange(0, len(subjects), 3)
    acc = boot.person_matrix(accepted, np.arange(len(subjects)), gallery)
    cmp_ = boot.person_matrix(impostor, np.arange(len(subjects)), gallery)
    assert acc.sum() == accepted.sum() and cmp_.sum() == impostor.sum()
    both = boot.two_way(acc, cmp_)
    rows = accepted.sum(1) / impostor.sum(1)
    probe_only = boot.estimate(lambda i: float(accepted[i].sum() / impostor[i].sum()))
    assert both.value == pytest.approx(accepted.sum() / impostor.sum()) == pytest.approx(probe_only.value)
    assert (both.ci_high - both.ci_low) > 1.3 * (probe_only.ci_high - probe_only.ci_low)
    assert rows.mean() > 0
