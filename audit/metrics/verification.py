"""Verification and identification metrics on cosine scores.

Conventions (as in bob.measure): functions take ``(negatives, positives)`` in that order;
a comparison is accepted when ``score >= threshold``. Thresholds for a target FMR are set
so that the measured FMR never exceeds the target: with the n impostor scores sorted high to
low (s_0 >= s_1 >= ...), k = floor(fmr * n) and tau = nextafter(s_k, +inf), the smallest float
above the (k+1)-th highest impostor score. At most the k highest impostors are then accepted;
impostor scores tied with s_k all sit below tau and are all rejected (never split), so ties
can only lower the measured FMR. Genuine scores equal to tau are accepted.

Operating points follow the rule of 30 (Doddington; ISO/IEC 19795-1): a target FMR is
supported only when the data hold at least 30 expected false matches at it, counted both in
impostor comparisons (image pairs) and in distinct impostor person pairs (each pair of persons
once, whichever of them is the probe: :func:`distinct_person_pairs`); otherwise the report says how
many more are needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_curve

FMR_TARGETS = (1e-2, 1e-3, 1e-4, 1e-5)
MIN_IMPOSTORS_PER_TARGET = 10
"""Probes without person-pair counts (inversion): a target FMR is usable when at least this many
impostor scores lie above its threshold."""
RULE_OF_30 = 30
"""Expected false matches an operating point needs, in comparisons and in person pairs."""


def l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return l2_normalise(a.astype(np.float64)) @ l2_normalise(b.astype(np.float64)).T


def supported_fmrs(n_impostors: int, targets=FMR_TARGETS[:3]) -> tuple[list[float], list[str]]:
    """FMR targets the impostor count supports, and a sentence for each one it does not."""
    ok, why = [], []
    for t in targets:
        if t * n_impostors >= MIN_IMPOSTORS_PER_TARGET:
            ok.append(t)
        else:
            why.append(f"FMR {t:g} needs at least {int(np.ceil(MIN_IMPOSTORS_PER_TARGET / t))} impostor comparisons; "
                       f"this dataset gives {n_impostors}")
    return ok, why


@dataclass(frozen=True)
class OperatingPoint:
    """One FMR target and whether the impostor counts support it (rule of 30)."""

    fmr: float
    comparisons: int
    """Impostor comparisons (image pairs) available."""
    person_pairs: int
    """Distinct impostor person pairs available (each pair of two persons once, :func:`distinct_person_pairs`)."""

    @property
    def needs_comparisons(self) -> int:
        return max(0, int(np.ceil(RULE_OF_30 / self.fmr)) - self.comparisons)

    @property
    def needs_person_pairs(self) -> int:
        return max(0, int(np.ceil(RULE_OF_30 / self.fmr)) - self.person_pairs)

    @property
    def supported(self) -> bool:
        return self.needs_comparisons == 0 and self.needs_person_pairs == 0

    def explain(self) -> str:
        if self.supported:
            return f"FMR {self.fmr:g}: supported ({self.fmr * self.person_pairs:.0f} expected false matches in person pairs)"
        parts = []
        if self.needs_comparisons:
            parts.append(f"{self.needs_comparisons} more impostor comparisons")
        if self.needs_person_pairs:
            parts.append(f"{self.needs_person_pairs} more impostor person pairs")
        return (f"FMR {self.fmr:g} not supported: needs {' and '.join(parts)} (rule of 30: at least "
                f"{RULE_OF_30} expected false matches; this dataset gives {self.comparisons} comparisons between "
                f"{self.person_pairs} person pairs)")

    def to_dict(self) -> dict:
        return {"fmr": self.fmr, "supported": self.supported, "comparisons": self.comparisons,
                "person_pairs": self.person_pairs, "needs_comparisons": self.needs_comparisons,
                "needs_person_pairs": self.needs_person_pairs}


def distinct_person_pairs(a: np.ndarray, b: np.ndarray) -> int:
    """Unordered pairs of two different persons with one in ``a`` and the other in ``b`` (person ids, each set without
    repeats): a person in both sets pairs with every other once, not once per side."""
    both = len(np.intersect1d(a, b))
    return len(a) * len(b) - both - both * (both - 1) // 2


def operating_points(comparisons: int, person_pairs: int, targets=FMR_TARGETS) -> list[OperatingPoint]:
    return [OperatingPoint(t, int(comparisons), int(person_pairs)) for t in targets]


def threshold_at_fmr(negatives: np.ndarray, fmr: float, presorted: bool = False) -> float:
    """Smallest threshold whose FMR (share of negatives >= threshold) is at most ``fmr``; ``presorted``: the
    negatives are already sorted low to high (one sorted copy serves several calls)."""
    neg = (np.asarray(negatives, np.float64) if presorted else np.sort(np.asarray(negatives, np.float64)))[::-1]
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


def eer(negatives: np.ndarray, positives: np.ndarray, presorted: bool = False) -> EER:
    """Where the FMR and FNMR curves cross, on the full ROC curve (a point at every distinct score): the bracket
    :func:`eer_auc_many` gives with unit weights, found by bisection on the sorted scores, so that memory stays one
    sorted copy of the impostor scores (the identity probe's are every probe image against every gallery image);
    ``presorted`` as in :func:`threshold_at_fmr`."""
    neg = np.asarray(negatives, np.float64) if presorted else np.sort(np.asarray(negatives, np.float64))
    pos = np.sort(np.asarray(positives, np.float64))
    n0, n1 = len(neg), len(pos)
    if not n0 or not n1:
        return EER(float("nan"), float("nan"), False)

    def rates(t: float) -> tuple[float, float]:  # (FMR, FNMR) accepting scores >= t
        return (n0 - np.searchsorted(neg, t, "left")) / n0, 1 - (n1 - np.searchsorted(pos, t, "left")) / n1

    def last_crossed(sorted_scores: np.ndarray) -> float | None:
        """The highest of these scores at which FMR >= FNMR (FMR - FNMR only falls as the threshold rises)."""
        lo, hi = 0, len(sorted_scores) - 1
        if hi < 0 or np.subtract(*rates(sorted_scores[0])) < 0:
            return None
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if np.subtract(*rates(sorted_scores[mid])) >= 0 else (lo, mid - 1)
        return float(sorted_scores[lo])

    at = max(t for t in (last_crossed(neg), last_crossed(pos)) if t is not None)  # the first point, high to low
    fmr_i, fnmr_i = rates(at)
    above = [a[np.searchsorted(a, at, "right")] for a in (neg, pos) if np.searchsorted(a, at, "right") < len(a)]
    fmr_p, fnmr_p = rates(min(above)) if above else (0.0, 1.0)  # the point before ("accept nothing" at the top)
    lo, hi = max(fmr_p, fnmr_i), min(fmr_i, fnmr_p)
    return EER(float(min(lo, hi)), float(max(lo, hi)), True)


def auc(negatives: np.ndarray, positives: np.ndarray, presorted: bool = False) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half): the same number as
    scikit-learn's ``roc_auc_score`` (tests/metrics check it), without its input validation, which cost
    more than the sort itself in the identity probe's bootstrap (thousands of calls per run). Each genuine score
    is placed among the sorted impostor scores (one sorted copy of them in memory; ``presorted`` as in
    :func:`threshold_at_fmr`)."""
    n0, n1 = len(negatives), len(positives)
    if n0 == 0 or n1 == 0:
        raise ValueError("AUC needs both genuine and impostor scores")
    neg = np.asarray(negatives, np.float64) if presorted else np.sort(np.asarray(negatives, np.float64))
    pos = np.asarray(positives, np.float64)
    below, tied_or_below = np.searchsorted(neg, pos, "left"), np.searchsorted(neg, pos, "right")
    return float((below.sum() + 0.5 * (tied_or_below - below).sum()) / n0 / n1)


def weighted_roc(negatives: np.ndarray, positives: np.ndarray, w_neg: np.ndarray, w_pos: np.ndarray,
                 chunk: int = 64):
    """Cumulative (false, true) acceptances at every distinct score, high to low, under each row of weights.

    ``w_neg`` (B, n0) and ``w_pos`` (B, n1) weigh each score (a person resample: how often its person was
    drawn); yields, per chunk of rows, ``(fps, tps, neg_at, pos_at)``: ``fps``/``tps`` (b, G + 1) the weight of
    impostor / genuine scores at or above each of the G distinct scores (a leading 0 for "accept nothing"),
    ``neg_at``/``pos_at`` (b, G) the weight at each score. With unit weights these are scikit-learn's
    ``roc_curve(..., drop_intermediate=False)`` counts; a score whose weight is 0 gives a point equal to the
    one before it, which changes neither the EER bracket nor the area.
    """
    scores = np.r_[negatives, positives]
    order = np.argsort(-scores, kind="stable")
    is_pos = order >= len(negatives)
    ends = np.r_[np.flatnonzero(np.diff(scores[order])), len(scores) - 1]  # last position of each distinct score
    w_neg, w_pos = np.atleast_2d(w_neg), np.atleast_2d(w_pos)
    for a in range(0, len(w_neg), chunk):
        w = np.concatenate([w_neg[a:a + chunk], w_pos[a:a + chunk]], axis=1)[:, order].astype(float)
        tps = np.cumsum(w * is_pos, axis=1)[:, ends]
        fps = np.cumsum(w * ~is_pos, axis=1)[:, ends]
        zero = np.zeros((len(w), 1))
        fps, tps = np.concatenate([zero, fps], 1), np.concatenate([zero, tps], 1)
        yield fps, tps, np.diff(fps, axis=1), np.diff(tps, axis=1)


def eer_auc_many(negatives: np.ndarray, positives: np.ndarray, w_neg: np.ndarray, w_pos: np.ndarray):
    """EER bracket and AUC under each row of weights, from one pass over the weighted curves (see
    :func:`weighted_roc`): ``(low, high, crossed, auc)``, arrays with one value per row. The EER bracket lies
    between the first point where FMR >= FNMR and the point before; the AUC is the weighted Mann-Whitney
    statistic (:func:`auc`): genuine weight times the impostor weight below it plus half the impostor weight
    tied with it. The bootstrap draws every person resample's EER and AUC at once this way instead of one
    ROC curve per resample."""
    lows, highs, crossed, areas = [], [], [], []
    for fps, tps, neg_at, pos_at in weighted_roc(negatives, positives, w_neg, w_pos):
        with np.errstate(invalid="ignore", divide="ignore"):
            fpr, fnr = fps / fps[:, -1:], 1 - tps / tps[:, -1:]
            below = fps[:, -1:] - fps[:, 1:]  # impostor weight strictly below each distinct score
            areas.append((pos_at * (below + 0.5 * neg_at)).sum(1) / (fps[:, -1] * pos_at.sum(1)))
        ok = fpr - fnr >= 0
        i = np.where(ok.any(1), ok.argmax(1), fpr.shape[1] - 1)
        rows = np.arange(len(i))
        prev = np.maximum(i - 1, 0)
        lo = np.maximum(fpr[rows, prev], fnr[rows, i])
        hi = np.minimum(fpr[rows, i], fnr[rows, prev])
        first = i == 0  # no point before: the bracket is the point itself
        lo = np.where(first, np.minimum(fpr[rows, i], fnr[rows, i]), lo)
        hi = np.where(first, np.maximum(fpr[rows, i], fnr[rows, i]), hi)
        never = ~ok.any(1)
        lows.append(np.where(never, fnr[:, -1], np.minimum(lo, hi)))
        highs.append(np.where(never, fpr[:, -1], np.maximum(lo, hi)))
        crossed.append(~never & (~first | (fpr[rows, i] == fnr[rows, i])))
    return tuple(np.concatenate(v) for v in (lows, highs, crossed, areas))


ROC_EXACT = 2_000_000
"""Impostor scores up to which the plotted ROC is computed on every one of them; above, on every k-th of them
sorted, each weighing k (the curve within k / n of the exact one in FMR), which bounds its memory."""


def roc_points(negatives: np.ndarray, positives: np.ndarray, max_points: int = 200) -> dict[str, list[float]]:
    """Down-sampled ROC/DET points (FMR, FNMR) for plots."""
    weight = None
    if len(negatives) > ROC_EXACT:
        k = -(-len(negatives) // ROC_EXACT)
        negatives = np.sort(np.asarray(negatives, np.float64))[::-1][::k]  # highest first, every k-th
        weight = np.r_[np.full(len(negatives), float(k)), np.ones(len(positives))]
    y = np.r_[np.zeros(len(negatives)), np.ones(len(positives))]
    fpr, tpr, thr = roc_curve(y, np.r_[negatives, positives], drop_intermediate=True, sample_weight=weight)
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
