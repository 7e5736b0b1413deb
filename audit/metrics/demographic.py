"""Demographic differentials at one global threshold (NIST FRVT part 3/8, ISO/IEC 19795-10), and how many
persons a group needs before a differential rule can be judged on it."""

from __future__ import annotations

import math

import numpy as np

from audit.metrics.stats import clopper_pearson_continuous


def ratio_max_min(rates: dict[str, float]) -> float:
    """max/min of group rates; 1 when all groups are equal (zero included), inf when only some are zero."""
    v = np.array([r for r in rates.values() if np.isfinite(r)])
    if len(v) < 2:
        return float("nan")
    if v.max() == v.min():
        return 1.0
    return float(v.max() / v.min()) if v.min() > 0 else float("inf")


def ratio_max_geomean(rates: dict[str, float]) -> float:
    """max / geometric mean of group rates; 1 when all equal, inf when some (not all) are zero."""
    v = np.array([r for r in rates.values() if np.isfinite(r)])
    if len(v) < 2:
        return float("nan")
    if v.max() == v.min():
        return 1.0
    if np.any(v <= 0):
        return float("inf")
    return float(v.max() / np.exp(np.mean(np.log(v))))


def fairness_discrepancy_rate(fmr: dict[str, float], fnmr: dict[str, float], alpha: float = 0.5) -> float:
    """FDR = 1 - (alpha * max|FMR_i - FMR_j| + (1 - alpha) * max|FNMR_i - FNMR_j|); 1 = parity."""
    a = np.array([v for v in fmr.values() if np.isfinite(v)])
    b = np.array([v for v in fnmr.values() if np.isfinite(v)])
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(1 - (alpha * (a.max() - a.min()) + (1 - alpha) * (b.max() - b.min())))


RATIOS = {"fmr_max_min": "fmr", "fmr_max_geomean": "fmr", "fnmr_max_min": "fnmr", "fnmr_max_geomean": "fnmr"}
"""Differentials that are ratios of group rates, and the rate each is made of (``fdr`` uses both)."""
DIFFERENTIALS = (*RATIOS, "fdr")


def resolves(rate: float, units: float, metric: str, threshold: float, alpha: float = 0.05) -> bool:
    """Whether a group with ``units`` independent units (persons for FNMR, person pairs for FMR) can tell its
    rate apart at the threshold of a differential rule, were its true rate ``rate`` (the overall one).

    For a ratio (max/min, max/geomean) judged at ``threshold`` T: the upper end of the group's exact-binomial
    95% interval at ``rate`` lies at or below T x ``rate``, so a group at T times the rate would be seen as
    different. For the fairness discrepancy rate judged at F: that upper end lies within 2 (1 - F) of
    ``rate`` (with alpha = 0.5, a gap of 2 (1 - F) in one rate alone brings the FDR down to F)."""
    if units <= 0:
        return False
    upper = clopper_pearson_continuous(rate, units, alpha)[1]
    if metric == "fdr":
        return upper - rate <= 2 * (1 - threshold)
    return upper <= threshold * rate


def units_needed(rate: float, metric: str, threshold: float, alpha: float = 0.05) -> int:
    """Fewest units with which :func:`resolves` holds (doubling, then bisection); 0 when none would do."""
    hi = 1
    while not resolves(rate, hi, metric, threshold, alpha):
        hi *= 2
        if hi > 2 ** 40:
            return 0
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if resolves(rate, mid, metric, threshold, alpha) else (mid, hi)
    return hi


def pairs_to_persons(pairs: int) -> int:
    """Fewest persons n whose distinct impostor pairs within the group, n (n - 1) / 2, reach ``pairs`` (each pair of
    persons once, whichever is the probe: as the rule of 30 counts them)."""
    pairs = max(int(pairs), 0)
    n = (1 + math.isqrt(1 + 8 * pairs)) // 2  # in whole numbers: no square root's rounding
    return max(n + (n * (n - 1) // 2 < pairs), 1)
