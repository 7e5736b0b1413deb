"""Demographic differentials at one global threshold (NIST FRVT part 3/8, ISO/IEC 19795-10)."""

from __future__ import annotations

import numpy as np


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
