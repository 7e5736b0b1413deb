"""The vectorised bootstrap (confusion matrices summed per resample) gives exactly the intervals of the
one-call-per-resample path it replaced in the leakage probe."""

import numpy as np

from audit.metrics.stats import SubjectBootstrap, widen_for_training
from audit.probes.leakage import CATEGORICAL_DIRECTIONS, RATE_METRICS, LeakageProbe


def test_resample_sums_equal_sums_over_resample_indices():
    rng = np.random.default_rng(1)
    subjects = rng.integers(0, 40, 150)
    boot = SubjectBootstrap(subjects, 30, 7, "sums")
    values = rng.random((150, 2, 3))
    sums = boot.resample_sums(values, chunk=7)  # several chunks
    want = np.stack([values[idx].sum(0) for idx in boot.indices()])
    assert sums.shape == (30, 2, 3) and np.allclose(sums, want, rtol=0, atol=1e-9)


def test_vectorised_leakage_intervals_match_the_per_resample_path():
    rng = np.random.default_rng(0)
    n, k = 600, 3
    subjects = np.repeat(np.arange(200), 3)
    y = rng.integers(0, k, n)
    keep = rng.random(n) > 0.05  # unlabelled images are left out of every statistic
    preds = [np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n)) for _ in range(2)]
    clean = [np.where(rng.random(n) < 0.4, y, rng.integers(0, k, n)) for _ in range(2)]
    boot = SubjectBootstrap(subjects, 100, 0, "t")
    probe, labels = LeakageProbe(), np.arange(k)
    full, boots = probe._categorical_boots(preds, y, keep, boot, k)
    for metric in CATEGORICAL_DIRECTIONS:
        fns = [probe._stat_fn(y, p, keep, False, labels, None, metric) for p in preds]
        rate = metric in RATE_METRICS
        assert boot.from_resamples(np.mean(full[metric]), boots[metric], rate=rate) == boot.pooled(fns, rate=rate)
    clean_cat = probe._categorical_boots(clean, y, keep, boot, k)
    effect = probe._effect("mask:x", "train=same", "a", preds, clean, (full, boots), clean_cat, y, keep, boot, False,
                           labels, 5)
    stat = lambda p: probe._stat_fn(y, p, keep, False, labels, None, "normalised_gain")  # noqa: E731
    # the per-resample path, widened for the trained attacker's variability as the probe widens it (5 folds)
    want = widen_for_training(boot.pooled([lambda i, a=stat(p), b=stat(c): a(i) - b(i) for p, c in zip(preds, clean)]),
                              5, (-np.inf, np.inf))
    assert np.allclose([effect.value, effect.ci_low, effect.ci_high], [want.value, want.ci_low, want.ci_high],
                       rtol=0, atol=1e-12)


def test_age_intervals_from_one_pass_match_the_per_metric_path():
    from audit.probes.leakage import AGE_DIRECTIONS

    rng = np.random.default_rng(2)
    subjects = np.repeat(np.arange(100), 4)
    y = rng.uniform(18, 80, len(subjects))
    keep = rng.random(len(y)) > 0.05
    preds = [y + rng.normal(0, 8, len(y)) for _ in range(2)]
    medians = [rng.choice([40.0, 41.5, 43.0], len(y)) for _ in range(2)]  # training medians of each image's fold
    boot = SubjectBootstrap(subjects, 60, 3, "age")
    probe = LeakageProbe()
    full, boots = probe._age_boots(preds, medians, y, keep, boot)
    for metric in AGE_DIRECTIONS:
        fns = [probe._stat_fn(y, p, keep, True, None, m, metric) for p, m in zip(preds, medians)]
        rate = metric in RATE_METRICS
        assert boot.from_resamples(np.mean(full[metric]), boots[metric], rate=rate) == boot.pooled(fns, rate=rate)


def test_mean_from_resample_sums_matches_one_call_per_resample():
    rng = np.random.default_rng(6)
    subjects = rng.integers(0, 50, 400)
    boot = SubjectBootstrap(subjects, 80, 1, "mean")
    for values, rate in ((rng.random(400) < 0.3, True), (rng.normal(5, 2, 400), False), (np.zeros(400), True)):
        want = boot.estimate(lambda i, v=values: float(np.asarray(v, float)[i].mean()), rate=rate)
        got = boot.mean(values, rate=rate)
        assert np.allclose([got.value, got.ci_low, got.ci_high], [want.value, want.ci_low, want.ci_high],
                           rtol=0, atol=1e-12) and got.n == want.n
    with_inf = np.r_[np.inf, rng.normal(30, 3, 399)]  # an identical image pair's PSNR
    got, want = boot.mean(with_inf), boot.estimate(lambda i: float(with_inf[i].mean()))
    assert np.array_equal([got.value, got.ci_low, got.ci_high], [want.value, want.ci_low, want.ci_high],
                          equal_nan=True)


def test_person_pair_sums_and_two_way_resamples_equal_their_definitions():
    """The sparse person maps sum a probe x gallery matrix as explicit loops over persons do, and the two-way
    rate's resamples (one draw of persons for both sides, a chunk of resamples per product) are each
    resample's (person counts) @ accepted @ (person counts) over the same for compared, exactly."""
    from audit.metrics.stats import PersonPairs, floor_rate, percentile_interval, expanded_alpha

    rng = np.random.default_rng(3)
    subjects = rng.integers(0, 25, 120)
    boot = SubjectBootstrap(subjects, 300, 2, "pairs")  # more resamples than one chunk
    cols = rng.choice(120, 25, replace=False)
    values = rng.integers(0, 3, (120, 25)).astype(float)
    pairs = PersonPairs(boot, np.arange(120), cols)
    want = np.zeros((boot.n_subjects, boot.n_subjects))
    for i in range(120):
        for j, c in enumerate(cols):
            want[boot.inverse[i], boot.inverse[c]] += values[i, j]
    assert np.array_equal(pairs.sum(values), want)
    assert np.array_equal(pairs.sum(values, rows_per_chunk=7), want)  # a chunk of rows at a time: the same sums
    assert np.array_equal(pairs.sum(values > 1, rows_per_chunk=7), pairs.sum((values > 1).astype(float)))

    compared = rng.integers(0, 20, (boot.n_subjects, boot.n_subjects)).astype(float)
    compared[:, 0] = 0  # a gallery person nobody is compared with: a resample that draws only them has no rate
    accepted = rng.binomial(compared.astype(int), 0.1).astype(float)
    k = boot.n_subjects
    boots = []
    for d in boot.draws:
        w = v = np.bincount(d, minlength=k)
        den = w @ compared @ v
        boots.append((w @ accepted @ v) / den if den else np.nan)
    est = percentile_interval(accepted.sum() / compared.sum(), np.array(boots), int(compared.sum()),
                              expanded_alpha(0.05, k))
    est = floor_rate(est, int((compared > 0).sum()), 0.05, np.array(boots), int(compared.sum()))
    assert boot.two_way(accepted, compared) == est
