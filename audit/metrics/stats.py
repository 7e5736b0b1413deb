"""Subject-level bootstrap confidence intervals that cover.

Images of one person are not independent, so intervals resample *persons* with replacement
and take every image of each drawn person. Three corrections keep nominal 95% intervals at
95% coverage (``benchmarks/coverage.py`` and ``tests/metrics/test_coverage.py`` measure it on
problems with a known answer):

* **Expanded percentile** (Hesterberg 2015): plain percentile intervals are too narrow by
  about the factor sqrt((n-1)/n) and by the normal-vs-t gap at small n, so the quantiles are
  taken at ``alpha' / 2 = Phi(-sqrt(n / (n - 1)) * t_{1 - alpha/2, n - 1})`` with n persons.
* **Exact-binomial floor** for rates: a rate's interval is at least the Clopper-Pearson interval
  on its effective number of trials (Korn & Graubard: p(1-p) / bootstrap variance, at most the
  number of images or comparisons), which corrects the skew of rates near 0 and 1. A rate of 0
  or 1 has no variance to measure: its floor is Clopper-Pearson on the number of persons (person
  pairs for false match rates), never a zero-width interval.
* **Both sides resampled** for comparisons between persons (false match rates): each resample's one
  draw of persons weighs a comparison by how often its probe person and its gallery person were
  drawn (:meth:`SubjectBootstrap.two_way`); the same person on both sides has the same count.

The statistic is recomputed on each resample from fixed predictions; the leakage probe adds
the attacker's split-to-split variance by pooling resamples over repeated cross-validations
(:meth:`SubjectBootstrap.pooled`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats as sps

from audit.seeding import rng_for


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    """Images (or pairs) the statistic was computed on."""


def expanded_alpha(alpha: float, n_units: int) -> float:
    """Tail probability (both tails) at which to read bootstrap quantiles for ``n_units`` resampled units."""
    if n_units < 3:
        return alpha
    t = sps.t.ppf(1 - alpha / 2, n_units - 1)
    return float(2 * sps.norm.cdf(-np.sqrt(n_units / (n_units - 1)) * t))


def clopper_pearson(rate: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact binomial interval for a rate observed on ``n`` independent units (rounded to a count)."""
    if n <= 0 or not np.isfinite(rate):
        return float("nan"), float("nan")
    k = int(round(min(max(rate, 0.0), 1.0) * n))
    lo = 0.0 if k == 0 else float(sps.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(sps.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


class SubjectBootstrap:
    """Draws person resamples once and reuses them for every statistic (paired comparisons)."""

    def __init__(self, subjects: Sequence, n_boot: int, seed: int, key: str = ""):
        subjects = np.asarray(subjects)
        self.uniq, self.inverse = np.unique(subjects, return_inverse=True)
        order = np.argsort(self.inverse, kind="stable")
        counts = np.bincount(self.inverse, minlength=len(self.uniq))
        self.members = np.split(order, np.cumsum(counts)[:-1])
        rng = rng_for(seed, "bootstrap", key)
        # One draw of persons per resample, for both sides of a comparison between two of them (probe x gallery):
        # the gallery holds the same persons, and a person whose face sits near many others' does so as a probe and
        # as a gallery entry alike (their effects correlate 0.7-0.9 on the sample models). Until 0.11.0 the gallery
        # side had a draw of its own, which left that covariance out: every FMR interval covered about 0.88 for
        # 0.95 (a review of the statistics). A gallery of other persons has a bootstrap of its own (``gallery=``).
        self.draws = [rng.integers(0, len(self.uniq), len(self.uniq)) for _ in range(n_boot)]
        self.n = len(subjects)
        self.n_subjects = len(self.uniq)

    def indices(self) -> list[np.ndarray]:
        return [np.concatenate([self.members[s] for s in d]) for d in self.draws]

    def resample_sums(self, per_image: np.ndarray, chunk: int = 256) -> np.ndarray:
        """Sums of per-image values (n, ...) over every resample: ``(n_boot, ...)``, equal to
        ``per_image[idx].sum(0)`` for each ``idx`` in :meth:`indices` (a person drawn twice counts twice).

        Counts (confusion matrices, hits) summed this way give any statistic of them on all resamples
        at once, through persons-by-resamples matrix products in chunks (bounded memory), instead of
        one Python call per resample."""
        per_image = np.asarray(per_image, float)
        tail = per_image.shape[1:]
        per_person = np.zeros((self.n_subjects, int(np.prod(tail, dtype=int))))
        np.add.at(per_person, self.inverse, per_image.reshape(len(per_image), -1))
        out = [counts @ per_person for counts in self._draw_counts(chunk)]
        return np.concatenate(out).reshape((len(self.draws),) + tail)

    def _draw_counts(self, chunk: int):
        """How often each person is drawn in each resample, ``(b, n_subjects)`` per chunk of resamples (both sides of
        a comparison between two of this sample's persons)."""
        draws = self.draws
        for a in range(0, len(draws), chunk):
            yield np.stack([np.bincount(d, minlength=self.n_subjects) for d in draws[a:a + chunk]])

    def image_weights(self, chunk: int = 64):
        """Each image's weight in each resample (how often its person was drawn: the times it appears in that
        resample's :meth:`indices`), ``(b, n)`` per chunk of resamples; for statistics that take weights
        (:func:`audit.metrics.verification.eer_auc_many`) and so run on every resample at once."""
        for counts in self._draw_counts(chunk):
            yield counts[:, self.inverse].astype(float)

    def pair_weights(self, rows: np.ndarray, gallery_persons: np.ndarray, chunk: int = 64):
        """Weights for a two-way resample of comparisons, per chunk of resamples: ``(w_images, w_pairs)``, each
        probe image's weight under the probe-side draws (as :meth:`image_weights`), and for comparisons between
        probe image ``rows[j]`` and a gallery image of person ``gallery_persons[j]`` (positions in this
        bootstrap's persons) the product of the two persons' counts in the resample's one draw (:meth:`two_way`'s
        scheme). Statistics over both
        genuine and impostor comparisons (EER, AUC) weigh genuine scores by ``w_images`` and impostor scores by
        ``w_pairs``, so persons vary on both sides of an impostor comparison."""
        probe_of_row = self.inverse[rows]
        for c in self._draw_counts(chunk):
            yield c[:, self.inverse].astype(float), (c[:, probe_of_row] * c[:, gallery_persons]).astype(float)

    def share_at_own_threshold(self, positives: np.ndarray, negatives: np.ndarray, where, compared: np.ndarray,
                               rate: float, chunk: int = 64,
                               positive_persons: np.ndarray | None = None,
                               gallery: "SubjectBootstrap | None" = None) -> np.ndarray:
        """Every resample's share of ``positives`` (one score per probe image, e.g. genuine scores) at or above the
        threshold that resample's own negatives put at ``rate`` (TAR at a false match rate): the threshold is a tail
        quantile of the impostor scores and varies with the persons drawn, so it is chosen again on each resample,
        as :func:`audit.metrics.verification.threshold_at_fmr` chooses it on the weighted negatives. A threshold held
        at the whole sample's value gives an interval that misses the truth too often (coverage 0.90 for 0.95).

        ``negatives``: every impostor score; ``where(positions)`` gives the (probe image, gallery person) of the ones at
        those positions (the gallery person a position in this bootstrap's persons), each weighted two-way as in
        :meth:`pair_weights`. It is asked only for the highest scores, which the resamples read, so that a caller
        holding millions of impostor scores need not hold an index for each (:func:`mask_positions`).
        ``compared[p, g]``: impostor comparisons between probe person p and gallery person g (all of them, for each
        resample's total weight). Only the top of the negatives is read: enough of it for every resample to place
        its threshold (all of them at worst).

        ``positive_persons``: each positive's person (position in this bootstrap's persons) when the positives are not
        one per image of the sample (a subset of its images, or several comparisons per image); a positive weighs
        how often its person was drawn. A resample that draws none of their persons has no share (NaN).

        ``gallery``: when the gallery's persons are not this sample's (a gallery with distractors), the bootstrap of
        the gallery images' persons (as many resamples), whose draws are the gallery side; the gallery persons
        ``where`` gives are then positions in its persons and ``compared`` is (this sample's persons, its persons)."""
        m = top_needed(len(negatives), rate)
        chunk = max(1, min(chunk, int(4e6 // max(m, 1))))  # bounded memory: chunk x m weights (32 MB) at a time
        sides = ((c, c) for c in self._draw_counts(chunk)) if gallery is None else \
            zip(self._draw_counts(chunk), gallery._draw_counts(chunk))

        def persons_of(idx):
            r, g = where(idx)
            return self.inverse[r], g

        return shares_at_own_threshold(sides,
                                       positives, self.inverse if positive_persons is None else positive_persons,
                                       negatives, persons_of, compared, rate)

    def from_resamples(self, value: float, boots: np.ndarray, alpha: float = 0.05, rate: bool = False,
                       persons: int | None = None, observations: int | None = None,
                       unbounded: bool = False) -> Estimate:
        """An interval from a statistic already computed on every resample (pooled repeats may be stacked:
        ``boots`` of any length); ``rate`` as in :meth:`estimate`.

        ``persons`` and ``observations``: for a statistic of a subset (one demographic group), the persons
        and images (comparisons) it rests on; the expanded percentile and the exact-binomial floor then count
        those, not the whole sample's (default: every person and image). ``unbounded``: resamples may be
        infinite (a ratio whose denominator is 0 in some resamples) and the interval keeps them, so its end
        is +inf rather than read from the finite resamples only."""
        return self._finish(float(value), np.asarray(boots, float).ravel(), alpha, rate, persons, observations,
                            unbounded)

    def _finish(self, value: float, boots: np.ndarray, alpha: float, rate: bool, persons: int | None = None,
                observations: int | None = None, unbounded: bool = False) -> Estimate:
        persons = self.n_subjects if persons is None else persons
        observations = self.n if observations is None else observations
        est = percentile_interval(value, boots, observations, expanded_alpha(alpha, persons), unbounded)
        return floor_rate(est, persons, alpha, boots, observations) if rate else est

    def estimate(self, stat: Callable[[np.ndarray], float], alpha: float = 0.05, rate: bool = False) -> Estimate:
        """``stat`` on every image and on each resample; ``rate=True`` adds the exact-binomial floor
        on the number of persons (use it for shares: FNMR, TAR, rank-1, accuracy, PSR, SAR)."""
        value = float(stat(np.arange(self.n)))
        boots = np.array([stat(idx) for idx in self.indices()], dtype=float)
        return self._finish(value, boots, alpha, rate)

    def mean(self, values: np.ndarray, alpha: float = 0.05, rate: bool = False) -> Estimate:
        """:meth:`estimate` of the mean of per-image ``values`` (hits, errors, scores), every resample at once from
        per-resample sums; non-finite values (an infinite PSNR) take the one-call-per-resample path."""
        values = np.asarray(values, float)
        if not np.all(np.isfinite(values)):
            return self.estimate(lambda i: float(values[i].mean()), alpha, rate)
        sums = self.resample_sums(np.stack([values, np.ones_like(values)], 1))
        return self._finish(float(values.mean()), sums[:, 0] / sums[:, 1], alpha, rate)

    def paired(self, stat_a: Callable[[np.ndarray], float], stat_b: Callable[[np.ndarray], float],
               alpha: float = 0.05) -> Estimate:
        """Difference ``stat_a - stat_b`` with both computed on the same person resamples."""
        full = np.arange(self.n)
        value = float(stat_a(full) - stat_b(full))
        boots = np.array([stat_a(i) - stat_b(i) for i in self.indices()], dtype=float)
        return self._finish(value, boots, alpha, False)

    def pooled(self, stats_by_repeat: list[Callable[[np.ndarray], float]], alpha: float = 0.05,
               rate: bool = False) -> Estimate:
        """A statistic measured under several repeats of a random procedure (e.g. cross-validation
        splits): the value is the mean over repeats, and the interval pools every repeat's resamples,
        so it holds the split-to-split variance as well as the person-to-person one."""
        full = np.arange(self.n)
        value = float(np.mean([s(full) for s in stats_by_repeat]))
        idx = self.indices()
        boots = np.array([s(i) for s in stats_by_repeat for i in idx], dtype=float)
        return self._finish(value, boots, alpha, rate)

    def person_matrix(self, values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Sum a (len(rows) x len(cols)) matrix into persons x persons; ``rows`` / ``cols`` are each row's and
        column's position in this bootstrap's sample, which tells whose image it is."""
        return PersonPairs(self, rows, cols).sum(values)

    def two_way_rates(self, accepted: np.ndarray, compared: np.ndarray) -> np.ndarray:
        """Every resample's rate ``accepted / compared`` (person x person matrices, as :meth:`two_way` takes them),
        the probe and the gallery persons weighted by the resample's one draw of persons (NaN
        where a resample draws no comparison): the rates a statistic of several groups' rates is computed on, so
        that its interval varies the gallery's persons too."""
        # Every resample's (probe counts) @ matrix @ (gallery counts), a chunk of resamples per matrix product (one
        # vector-matrix product per resample reads the whole persons x persons matrix each time: 20x slower at
        # 2,500 persons). Counts are whole numbers, so the sums are exact and the order of summing does not matter.
        num, den = [], []
        for w in self._draw_counts(256):
            num.append(((w @ accepted) * w).sum(1))
            den.append(((w @ compared) * w).sum(1))
        num, den = np.concatenate(num), np.concatenate(den)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)

    def two_way(self, accepted: np.ndarray, compared: np.ndarray, alpha: float = 0.05,
                persons: int | None = None, boots: np.ndarray | None = None) -> Estimate:
        """A rate over comparisons between persons (e.g. FMR): ``accepted[p, g]`` and ``compared[p, g]``
        count accepted and made comparisons between probe person p and gallery person g. Persons are resampled once
        for both sides (a person drawn twice weighs twice as a probe and as a gallery entry); the floor counts the
        distinct person pairs compared (p with g and g with p are one pair, as the rule of 30 counts them).
        ``persons``: the persons the rate rests on when it is one group's (default: all). Without a single comparison
        (a one-person group has no impostor pair of its own) the rate is undefined: NaN, never 0."""
        if not compared.sum():
            return Estimate(np.nan, np.nan, np.nan, 0)
        value = float(accepted.sum() / compared.sum())
        k = self.n_subjects
        boots = self.two_way_rates(accepted, compared) if boots is None else boots  # (computed already by a caller)
        made = compared > 0  # persons x persons, both sides the bootstrap's persons
        pairs = int(np.triu(made | made.T, 1).sum())
        est = percentile_interval(value, boots, int(compared.sum()),
                                  expanded_alpha(alpha, k if persons is None else persons))
        return floor_rate(est, pairs, alpha, boots, int(compared.sum()))


def highest(scores: np.ndarray, m: int) -> np.ndarray:
    """Positions of the ``m`` highest scores, highest first (ties by position), as :func:`shares_at_own_threshold`
    reads them."""
    part = np.arange(len(scores)) if m >= len(scores) else np.argpartition(-scores, m - 1)[:m]
    return part[np.lexsort((part, -scores[part]))]


def mask_positions(mask: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) in ``mask`` of its ``which``-th True entries in row-major order (the order of
    ``np.nonzero(mask)``), reading only the rows they are in."""
    which = np.asarray(which, np.int64)
    starts = np.r_[0, np.cumsum(mask.sum(1))]
    rows = np.searchsorted(starts, which, "right") - 1
    cols = np.empty_like(which)
    order = np.argsort(rows, kind="stable")
    bounds = np.flatnonzero(np.diff(rows[order])) + 1
    for part in np.split(order, bounds) if len(order) else []:
        r = rows[part[0]]
        cols[part] = np.flatnonzero(mask[r])[which[part] - starts[r]]
    return rows, cols


def pairs_within(persons: np.ndarray, n_persons: int) -> np.ndarray:
    """Comparisons per (person of image i, person of image j) over every i < j of different persons, ``persons``
    each image's person (a position below ``n_persons``): the impostor pairs within one set of images."""
    one = np.zeros((len(persons), n_persons))
    one[np.arange(len(persons)), persons] = 1
    later = np.cumsum(one[::-1], axis=0)[::-1] - one  # row i: the images after image i, by person
    out = one.T @ later
    np.fill_diagonal(out, 0)
    return out


def top_needed(n: int, rate: float) -> int:
    """How many of ``n`` negatives, highest first, to read first for thresholds at ``rate`` on person resamples: four
    times the number a threshold on the whole sample passes (a resample that needs more reads more)."""
    return min(n, max(1000, 4 * int(np.ceil(rate * n))))


def negatives_kept(n: int, rate: float) -> int:
    """How many of ``n`` impostor scores, highest first, a run keeps for paired comparisons of TAR at ``rate``
    (:func:`shares_at_own_threshold` on the replicates' draws): twice those the whole sample's threshold passes, and
    200 more. On the sample world (fr-baseline, 300 people, 1,000 replicates) the deepest replicate threshold lay at
    1.24 times that count at FMR 1e-2 and 1.6 times at 1e-3 (627 scores); a replicate that needs more takes the
    lowest kept score."""
    return min(n, max(1000, 2 * int(np.ceil(rate * n)) + 200))


def shares_at_own_threshold(draws, positives: np.ndarray, positive_persons: np.ndarray, negatives: np.ndarray,
                            persons_of, compared: np.ndarray, rate: float) -> np.ndarray:
    """Each resample's share of ``positives`` at or above the threshold its own weighted ``negatives`` put at
    ``rate`` (:meth:`SubjectBootstrap.share_at_own_threshold`, which documents the scheme; also the paired
    comparison's, audit/compare/paired.py, on the draws it shares between models).

    ``draws``: chunks of ``(c1, c2)``, each ``(b, persons)``: how often each person was drawn on the probe side and
    on the gallery side (the same draw when the gallery holds the sample's own persons; a gallery of other persons
    has its own). A positive weighs its person's ``c1``; ``persons_of(positions)`` gives the
    negatives at those positions' (probe person, gallery person), and such a negative weighs ``c1[probe person] *
    c2[gallery person]`` (looked up only for the highest negatives a resample reads, so a caller need not hold one
    for every comparison); ``compared[p, g]``: impostor comparisons between probe person p and gallery person g, for
    each resample's total. ``negatives`` may be only the highest ones (the paired comparison keeps as many as
    :func:`negatives_kept` says): a resample whose threshold lies below the lowest one given takes that one."""
    positives = np.asarray(positives, float)
    negatives = np.asarray(negatives, np.float64)
    n = len(negatives)
    top = highest(negatives, top_needed(n, rate))
    probe_p, gallery_p = persons_of(top)
    out = []
    for c1, c2 in draws:
        allowed = np.floor(rate * ((c1 @ compared) * c2).sum(1))  # impostor weight the threshold may accept
        while True:
            cum = np.cumsum(c1[:, probe_p] * c2[:, gallery_p], axis=1)
            if (cum[:, -1] > allowed).all() or len(top) == n:  # every threshold lies within the top
                break
            top = highest(negatives, min(n, 4 * len(top)))
            probe_p, gallery_p = persons_of(top)
        j = (cum <= allowed[:, None]).sum(1)  # the first j negatives are at or above the threshold
        scores = negatives[top]
        tau = np.where(j < len(top), np.nextafter(scores[np.minimum(j, len(top) - 1)], np.inf), scores[-1])
        w = c1[:, positive_persons].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((w * (positives[None, :] >= tau[:, None])).sum(1) / w.sum(1))
    return np.concatenate(out)


def widen_for_training(est: Estimate, folds: int, bounds: tuple[float, float] = (0.0, 1.0),
                       share: float = 1.0) -> Estimate:
    """Widen a cross-validated statistic's interval for the variability of the trained model itself.

    Resampling persons with the out-of-fold predictions held fixed measures how the test persons vary, not how
    a model trained on other persons would: for k-fold cross-validation the training sets overlap and their
    variance is part of the estimate's own (Nadeau & Bengio 2003 correct the variance by the factor
    1 + n_test / n_train = 1 + 1 / (k - 1)). Each end moves away from the value by sqrt of that factor, and stays
    within ``bounds``. ``share``: the share of the folds whose model was trained (the others fitted nothing), which
    scales the added variance."""
    f = float(np.sqrt(1 + share / max(folds - 1, 1)))
    if not (np.isfinite(est.ci_low) and np.isfinite(est.ci_high)):
        return est
    lo = max(bounds[0], est.value - f * (est.value - est.ci_low))
    hi = min(bounds[1], est.value + f * (est.ci_high - est.value))
    return Estimate(est.value, float(lo), float(hi), est.n)


class PersonPairs:
    """Sums (probe image x gallery image) matrices into (probe person x gallery person) ones.

    Built once per comparison layout and reused for every matrix summed over it (each threshold,
    condition and group), so the person maps are not rebuilt each time."""

    def __init__(self, boot: SubjectBootstrap, rows: np.ndarray, cols: np.ndarray):
        from scipy import sparse

        k = boot.n_subjects
        # One 1 per row (the row's person): sparse, so a sum costs the matrix's size, not its size times the persons.
        one = lambda persons: sparse.csr_array((np.ones(len(persons)), (np.arange(len(persons)), persons)),  # noqa: E731
                                               shape=(len(persons), k))
        self.p = one(boot.inverse[rows])
        self.gallery_persons = boot.inverse[cols]
        """Each column's person (position in the bootstrap's persons)."""
        self.g = one(self.gallery_persons)

    def sum(self, values: np.ndarray, rows_per_chunk: int | None = None) -> np.ndarray:
        """Probe person x gallery person sums of ``values`` (a 0/1 or count matrix, probe images x gallery images),
        a chunk of rows at a time (about 4M values each), so that no float copy of the whole matrix is made; counts
        are whole numbers, so the sums are exact whatever the chunking."""
        values = np.asarray(values)
        step = rows_per_chunk or max(1, 4_000_000 // max(values.shape[1], 1))
        by_probe_person = np.zeros((self.p.shape[1], values.shape[1]))  # persons x columns
        for a in range(0, len(values), step):
            by_probe_person += self.p[a:a + step].T @ values[a:a + step].astype(float)
        return np.asarray((self.g.T @ by_probe_person.T).T)


def floor_rate(est: Estimate, units: int | None, alpha: float = 0.05, boots: np.ndarray | None = None,
               observations: int | None = None) -> Estimate:
    """Widen the bootstrap interval of a rate to the exact binomial (Clopper-Pearson) interval on its
    effective number of trials (Korn & Graubard 1998): ``n_eff = p(1 - p) / var``, with ``var`` the
    bootstrap variance, capped at the number of ``observations`` (images, comparisons); at p = 0 or 1
    (no variance to measure) ``n_eff = units``, the number of persons (distinct person pairs for FMR).

    Rates of clustered 0/1 outcomes are skewed near 0 and 1, where percentile intervals miss the truth
    on the long side; the binomial interval is asymmetric in the right way, and a rate of 0 or 1 never
    gets a zero-width interval.
    """
    if not units or not np.isfinite(est.value):
        return est
    p = min(max(est.value, 0.0), 1.0)
    n_eff = effective_trials(p, boots, observations or units)
    n_eff = float(units) if n_eff is None else n_eff
    lo, hi = clopper_pearson_continuous(p, max(n_eff, 1.0), alpha)
    ci_low = lo if not np.isfinite(est.ci_low) else min(est.ci_low, lo)
    ci_high = hi if not np.isfinite(est.ci_high) else max(est.ci_high, hi)
    return Estimate(est.value, float(min(ci_low, est.value)), float(max(ci_high, est.value)), est.n)


def effective_trials(rate: float, boots: np.ndarray | None, most: float) -> float | None:
    """Korn & Graubard's effective number of binomial trials of ``rate`` (its resamples ``boots``):
    ``p(1 - p) / var``, at most ``most`` (the observations it was counted on); None where the resamples cannot
    tell (a rate of 0 or 1, resamples that do not vary, or none)."""
    p = min(max(float(rate), 0.0), 1.0) if np.isfinite(rate) else np.nan
    if boots is None or not 0 < p < 1:
        return None
    b = np.asarray(boots, float)
    b = b[np.isfinite(b)]
    var = float(np.var(b, ddof=1)) if len(b) > 1 else 0.0
    return min(float(most), p * (1 - p) / var) if var > 0 else None


def auc_trials(auc: float, positives: int, negatives: int) -> float:
    """The number of binomial trials whose rate has the variance of an AUC measured on ``positives`` and
    ``negatives`` independent units, by Hanley & McNeil (1982): var = [A(1 - A) + (n1 - 1)(Q1 - A^2)
    + (n0 - 1)(Q2 - A^2)] / (n1 n0), Q1 = A / (2 - A), Q2 = 2A^2 / (1 + A); trials = A(1 - A) / var.

    The exact-binomial floor of an AUC (:func:`floor_rate`) counts these, not the smaller class: an AUC rests
    on every (positive, negative) pair, and its variance is about that of a rate on 0.75 (n1 + n0) trials
    near chance (1.5 times the smaller class when the classes are equal), more towards 0 or 1. Symmetric about
    0.5; at 0 or 1 the limit is taken."""
    if positives < 1 or negatives < 1 or not np.isfinite(auc):
        return float("nan")
    a = min(max(auc, 1 - auc), 1 - 1e-9)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (positives - 1) * (q1 - a * a) + (negatives - 1) * (q2 - a * a)) / (positives * negatives)
    return float(a * (1 - a) / var)


def clopper_pearson_continuous(p: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Clopper-Pearson with a possibly fractional number of trials (beta quantiles; x = p n)."""
    x = p * n
    lo = 0.0 if x <= 0 else float(sps.beta.ppf(alpha / 2, x, n - x + 1))
    hi = 1.0 if x >= n else float(sps.beta.ppf(1 - alpha / 2, x + 1, n - x))
    return lo, hi


def percentile_interval(value: float, boots: np.ndarray, n: int, alpha: float, unbounded: bool = False) -> Estimate:
    """The ``alpha / 2`` and ``1 - alpha / 2`` quantiles of ``boots`` (widened to hold ``value``), ``alpha``
    already expanded (:func:`expanded_alpha`); with ``unbounded`` infinite resamples are kept."""
    if unbounded:
        # Infinite resamples are kept (quantiles read by rank, so +inf ends stay +inf instead of inf - inf = NaN).
        boots = boots[~np.isnan(boots)]
        if np.isnan(value) or len(boots) == 0:
            return Estimate(value, float("nan"), float("nan"), n)
        lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
        return Estimate(value, float(min(lo, value)), float(max(hi, value)), n)
    boots = boots[np.isfinite(boots)]
    if not np.isfinite(value) or len(boots) == 0:
        return Estimate(value, float("nan"), float("nan"), n)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    # Percentile intervals can exclude the point estimate on skewed statistics; widen to include it.
    return Estimate(value, float(min(lo, value)), float(max(hi, value)), n)
