"""Verification and identification metrics on cosine scores.

Conventions (as in bob.measure): functions take ``(negatives, positives)`` in that order;
a comparison is accepted when ``score >= threshold``. Thresholds for a target FMR are set
so that the measured FMR never exceeds the target: with impostor scores sorted high to low,
tau is the next float above the ``floor(fmr * n)``-th highest one, so ties at tau count as
rejections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

FMR_TARGETS = (1e-2, 1e-3, 1e-4)
MIN_IMPOSTORS_PER_TARGET = 10
"""A target FMR is supported when at least this many impostor scores lie above its threshold."""


def l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return l2_normalise(a.astype(np.float64)) @ l2_normalise(b.astype(np.float64)).T


def supported_fmrs(n_impostors: int, targets=FMR_TARGETS) -> tuple[list[float], list[str]]:
    """FMR targets the impostor count supports, and a sentence for each one it does not."""
    ok, why = [], []
    for t in targets:
        if t * n_impostors >= MIN_IMPOSTORS_PER_TARGET:
            ok.append(t)
        else:
            why.append(f"FMR {t:g} needs at least {int(np.ceil(MIN_IMPOSTORS_PER_TARGET / t))} impostor comparisons; "
                       f"this dataset gives {n_impostors}")
    return ok, why


def threshold_at_fmr(negatives: np.ndarray, fmr: float) -> float:
    """Smallest threshold whose FMR (share of negatives >= threshold) is at most ``fmr``."""
    neg = np.sort(np.asarray(negatives, np.float64))[::-1]
    k = int(np.floor(fmr * len(neg)))
    if k >= len(neg):
        return float(neg[-1])
    return float(np.nextafter(neg[k], np.inf))


def fmr_fnmr(negatives: np.ndarray, positives: np.ndarray, threshold: float) -> tuple[float, float]:
    fmr = float(np.mean(negatives >= threshold)) if len(negatives) else float("nan")
    fnmr = float(np.mean(positives < threshold)) if len(positives) else float("nan")
    return fmr, fnmr


@dataclass(frozen=True)
class EER:
    """Equal error rate as an interval where the FMR and FNMR curves cross."""

    low: float
    high: float
    crossed: bool
    """False when the curves never cross on the observed scores (then the interval is a bound)."""

    @property
    def mid(self) -> float:
        return (self.low + self.high) / 2


def eer(negatives: np.ndarray, positives: np.ndarray) -> EER:
    y = np.r_[np.zeros(len(negatives)), np.ones(len(positives))]
    fpr, tpr, _ = roc_curve(y, np.r_[negatives, positives])
    fnr = 1 - tpr
    diff = fpr - fnr
    idx = np.where(diff >= 0)[0]
    if len(idx) == 0:
        return EER(float(fnr[-1]), float(fpr[-1]), False)
    i = idx[0]
    if i == 0:
        return EER(float(min(fpr[0], fnr[0])), float(max(fpr[0], fnr[0])), bool(diff[0] == 0))
    lo = max(fpr[i - 1], fnr[i])
    hi = min(fpr[i], fnr[i - 1])
    return EER(float(min(lo, hi)), float(max(lo, hi)), True)


def auc(negatives: np.ndarray, positives: np.ndarray) -> float:
    y = np.r_[np.zeros(len(negatives)), np.ones(len(positives))]
    return float(roc_auc_score(y, np.r_[negatives, positives]))


def roc_points(negatives: np.ndarray, positives: np.ndarray, max_points: int = 200) -> dict[str, list[float]]:
    """Down-sampled ROC/DET points (FMR, FNMR) for plots."""
    y = np.r_[np.zeros(len(negatives)), np.ones(len(positives))]
    fpr, tpr, thr = roc_curve(y, np.r_[negatives, positives], drop_intermediate=True)
    keep = np.unique(np.r_[np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).astype(int)])
    return {"fmr": fpr[keep].tolist(), "fnmr": (1 - tpr[keep]).tolist(),
            "threshold": np.nan_to_num(thr[keep], posinf=1.0).tolist()}


def rank1(scores: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """Per-probe hit (1/0): the best-scoring gallery entry has the probe's label."""
    return (gallery_labels[np.argmax(scores, axis=1)] == probe_labels).astype(float)


def rank_of_true(scores: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """1-based rank of the best-scoring true-mate gallery entry for each probe."""
    true = gallery_labels[None, :] == probe_labels[:, None]
    best_true = np.where(true, scores, -np.inf).max(1)
    return 1 + (np.where(~true, scores, -np.inf) > best_true[:, None]).sum(1)
