"""Subject-level bootstrap confidence intervals.

Images of one person are not independent, so intervals resample *subjects* with
replacement and take every image of each drawn subject. Percentile intervals (95% by
default); the statistic is recomputed on each resample from fixed predictions (the
attacker is not retrained per resample, which understates variance a little; the report
says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from audit.seeding import rng_for


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    """Images (or pairs) the statistic was computed on."""


class SubjectBootstrap:
    """Draws subject resamples once and reuses them for every statistic (paired comparisons)."""

    def __init__(self, subjects: Sequence, n_boot: int, seed: int, key: str = ""):
        subjects = np.asarray(subjects)
        self.uniq, inverse = np.unique(subjects, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse, minlength=len(self.uniq))
        self.members = np.split(order, np.cumsum(counts)[:-1])
        rng = rng_for(seed, "bootstrap", key)
        self.draws = [rng.integers(0, len(self.uniq), len(self.uniq)) for _ in range(n_boot)]
        self.n = len(subjects)

    def indices(self) -> list[np.ndarray]:
        return [np.concatenate([self.members[s] for s in d]) for d in self.draws]

    def estimate(self, stat: Callable[[np.ndarray], float], alpha: float = 0.05) -> Estimate:
        value = float(stat(np.arange(self.n)))
        boots = np.array([stat(idx) for idx in self.indices()], dtype=float)
        return _interval(value, boots, self.n, alpha)

    def paired(self, stat_a: Callable[[np.ndarray], float], stat_b: Callable[[np.ndarray], float],
               alpha: float = 0.05) -> Estimate:
        """Difference ``stat_a - stat_b`` with both computed on the same subject resamples."""
        full = np.arange(self.n)
        value = float(stat_a(full) - stat_b(full))
        boots = np.array([stat_a(i) - stat_b(i) for i in self.indices()], dtype=float)
        return _interval(value, boots, self.n, alpha)


def _interval(value: float, boots: np.ndarray, n: int, alpha: float) -> Estimate:
    boots = boots[np.isfinite(boots)]
    if not np.isfinite(value) or len(boots) == 0:
        return Estimate(value, float("nan"), float("nan"), n)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    # Percentile intervals can exclude the point estimate on skewed statistics; widen to include it.
    return Estimate(value, float(min(lo, value)), float(max(hi, value)), n)
