"""Known-truth check of the paired intervals (see :mod:`audit.probes.coverage` for the single-run ones).

Two models see the same persons: each genuine comparison's score is a person effect shared by both
models (intra-class correlation 0.5, correlation 0.7 between the models) plus each model's own noise,
with true FNMR 0.05 for model A and 0.08 for model B at the threshold. The paired bootstrap of
:mod:`audit.compare.paired` gives B - A; the truth is 0.03.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from audit.compare.paired import PairedBootstrap, Series, _interval
from audit.metrics.stats import Estimate

TRUE_FNMR = (0.05, 0.08)
SHARED = 0.7  # correlation of a person's effect between the two models


def sim_paired_fnmr(rng, n: int, n_boot: int) -> tuple[Estimate, float]:
    m = 1 + rng.poisson(2.0, n)
    subjects = np.repeat(np.arange(n), m).astype(str)
    shared = rng.normal(0, 1, n)
    out = []
    for fnmr in TRUE_FNMR:
        own = SHARED * shared + np.sqrt(1 - SHARED ** 2) * rng.normal(0, 1, n)
        score = np.sqrt(0.5) * own[np.repeat(np.arange(n), m)] + np.sqrt(0.5) * rng.normal(0, 1, len(subjects))
        out.append((score < sps.norm.ppf(fnmr)).astype(float))  # unit variance: P(miss) = fnmr
    rows = np.arange(len(subjects))
    series = [Series("identity", "fnmr", "clean", "", "", "all", rows, subjects, "share", values=v) for v in out]
    boot = PairedBootstrap(subjects, n_boot, int(rng.integers(2**31)))
    (a, ab), (b, bb) = (boot.stat(s) for s in series)
    lo, hi = _interval(b - a, bb - ab, n)
    return Estimate(b - a, lo, hi, len(subjects)), TRUE_FNMR[1] - TRUE_FNMR[0]


def coverage(n: int, reps: int, n_boot: int = 200, seed: int = 0) -> dict:
    """Share of simulated datasets whose paired interval of B - A holds the true difference."""
    rng = np.random.default_rng([seed, n, 7])
    hits, below, widths, told = 0, 0, [], 0
    for _ in range(reps):
        est, truth = sim_paired_fnmr(rng, n, n_boot)
        hits += est.ci_low <= truth <= est.ci_high
        below += truth < est.ci_low
        told += est.ci_low > 0
        widths.append(est.ci_high - est.ci_low)
    return {"simulator": "paired", "metric": "fnmr difference B - A (paired)", "persons": n, "reps": reps,
            "n_boot": n_boot, "truth": TRUE_FNMR[1] - TRUE_FNMR[0], "coverage": hits / reps,
            "truth_below_interval": below / reps, "mean_width": float(np.mean(widths)), "told_apart": told / reps}
