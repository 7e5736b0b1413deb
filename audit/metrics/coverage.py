"""Known-truth problems for checking that nominal 95% intervals cover the truth.

Each simulator draws one dataset of ``n`` persons from a population whose true rate is known,
computes the statistic and its interval exactly as the probes do, and says whether the
interval holds the truth. :func:`coverage` repeats that; ``benchmarks/coverage.py`` prints the
table and ``tests/metrics/test_coverage.py`` asserts it. Persons differ (person-level random
effects), which is what makes image-level intervals too narrow.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import stats as sps

from audit.data.split import subject_folds
from audit.metrics.stats import Estimate, SubjectBootstrap


def _images_per_person(rng, n: int) -> np.ndarray:
    return 1 + rng.poisson(2.0, n)


def _person_rates(rng, n: int, mean: float, concentration: float) -> np.ndarray:
    return rng.beta(mean * concentration, (1 - mean) * concentration, n)


def sim_share(rng, n: int, n_boot: int, truth: float, concentration: float = 4.0) -> tuple[Estimate, float]:
    """A share over images with person-level propensities (FNMR at 0.05, PSR at 0.9): mean of 0/1 outcomes."""
    m = _images_per_person(rng, n)
    subjects = np.repeat(np.arange(n), m)
    p = np.repeat(_person_rates(rng, n, truth, concentration), m)
    hit = (rng.random(len(p)) < p).astype(float)
    boot = SubjectBootstrap(subjects, n_boot, int(rng.integers(2**31)), "share")
    return boot.estimate(lambda i: float(hit[i].mean()), rate=True), truth


FMR_TAU_Z = sps.norm.ppf(1 - 0.01)  # threshold putting the true FMR at 0.01


def sim_fmr(rng, n: int, n_boot: int, person_sd: float = 0.45) -> tuple[Estimate, float]:
    """Impostor scores = probe-person effect + gallery-person effect + noise (total variance 1); true FMR
    0.01 at a fixed threshold. Every person has one gallery image and several probes, as in the identity probe."""
    noise_sd = np.sqrt(1 - 2 * person_sd ** 2)
    m = _images_per_person(rng, n)
    subjects = np.repeat(np.arange(n), m)
    a = rng.normal(0, person_sd, n)[subjects]
    g = rng.normal(0, person_sd, n)
    scores = a[:, None] + g[None, :] + rng.normal(0, noise_sd, (len(subjects), n))
    impostor = subjects[:, None] != np.arange(n)[None, :]
    accepted = (scores > FMR_TAU_Z) & impostor
    boot = SubjectBootstrap(subjects, n_boot, int(rng.integers(2**31)), "fmr")
    gallery_pos = np.array([np.flatnonzero(subjects == s)[0] for s in range(n)])
    acc = boot.person_matrix(accepted, np.arange(len(subjects)), gallery_pos)
    cmp_ = boot.person_matrix(impostor, np.arange(len(subjects)), gallery_pos)
    return boot.two_way(acc, cmp_), 0.01


LEAK_DIM, LEAK_SHIFT, LEAK_PERSON_SD = 4, 0.45, 0.8


def _leak_draw(rng, n: int):
    m = _images_per_person(rng, n)
    subjects = np.repeat(np.arange(n), m)
    y_person = rng.integers(0, 2, n)
    u = rng.normal(0, LEAK_PERSON_SD, (n, LEAK_DIM))
    y = y_person[subjects]
    x = (y[:, None] * 2 - 1) * LEAK_SHIFT / 2 + u[subjects] + rng.normal(0, 1, (len(y), LEAK_DIM))
    return x, y, subjects


def _attacker():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=500)


@lru_cache(maxsize=8)
def leak_truth(n: int, folds: int = 5, reps: int = 200, seed: int = 12345) -> float:
    """Expected accuracy on new persons of the attacker trained on (folds-1)/folds of ``n`` persons."""
    rng = np.random.default_rng(seed)
    xt, yt, _ = _leak_draw(rng, 20000)
    accs = []
    for _ in range(reps):
        x, y, _ = _leak_draw(rng, int(round(n * (folds - 1) / folds)))
        accs.append(float((_attacker().fit(x, y).predict(xt) == yt).mean()))
    return float(np.mean(accs))


def sim_leak(rng, n: int, n_boot: int, folds: int = 5, repeats: int = 3) -> tuple[Estimate, float]:
    """Attacker accuracy by repeated grouped cross-validation, pooled over repeats (as the leakage probe)."""
    x, y, subjects = _leak_draw(rng, n)
    seed = int(rng.integers(2**31))
    correct = []
    for r in range(repeats):
        oof = np.zeros(len(y))
        for tr, te in subject_folds(subjects, folds, seed + r):
            oof[te] = _attacker().fit(x[tr], y[tr]).predict(x[te])
        correct.append((oof == y).astype(float))
    boot = SubjectBootstrap(subjects, n_boot, seed, "leak")
    return boot.pooled([lambda i, c=c: float(c[i].mean()) for c in correct], rate=True), leak_truth(n, folds)


SIMULATORS = {
    "fnmr": lambda rng, n, b: sim_share(rng, n, b, 0.05),
    "fmr": sim_fmr,
    "leakage_accuracy": sim_leak,
    "psr": lambda rng, n, b: sim_share(rng, n, b, 0.9),
}


def coverage(metric: str, n: int, reps: int, n_boot: int = 200, seed: int = 0) -> dict:
    """Empirical coverage of nominal 95% intervals for ``metric`` at ``n`` persons over ``reps`` datasets."""
    rng = np.random.default_rng([seed, n, sorted(SIMULATORS).index(metric)])
    hits, widths, misses_low = 0, [], 0
    truth = float("nan")
    for _ in range(reps):
        est, truth = SIMULATORS[metric](rng, n, n_boot)
        inside = est.ci_low <= truth <= est.ci_high
        hits += inside
        misses_low += (not inside) and truth < est.ci_low
        widths.append(est.ci_high - est.ci_low)
    return {"metric": metric, "persons": n, "reps": reps, "n_boot": n_boot, "truth": truth,
            "coverage": hits / reps, "truth_below_interval": misses_low / reps,
            "mean_width": float(np.mean(widths))}
