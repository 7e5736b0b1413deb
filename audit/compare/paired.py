"""Paired differences between models audited on the same persons, and rankings.

Every probe that has headline metrics keeps its per-unit outcomes (``outcomes.json``: one 0/1 outcome
per genuine comparison, the attacker's per-image predictions, or a membership attack's cross-validation folds). For comparable runs the units are
the same images of the same persons, so a **paired person bootstrap** draws persons once per
replicate and computes every model's metric on the same draw; the difference B - A in a replicate
then varies only with how the models differ on those persons, not with which persons were drawn,
which is far more sensitive than two separate intervals that overlap. Intervals are expanded
percentile intervals (Hesterberg) on the persons; a rate's ratio B / A comes from the same replicates.

Plain words: "B higher" / "A higher" when the 95% interval of B - A excludes 0, otherwise "cannot be
told apart with N persons" and how many persons would tell the observed difference apart with 80%
power (normal approximation: the interval's half-width shrinks as 1 / sqrt(persons)). Rankings give
each model's rank interval over the replicates (rank 1 = highest value; tied models share the better
rank, "min" ranking) and Holm-adjusted pairwise verdicts (two-sided bootstrap p-values) that never
contradict the paired rows (see :func:`_ranking`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as sps

from audit.metrics.demographic import ratio_max_min
from audit.metrics.stats import (clopper_pearson, expanded_alpha, pairs_within, percentile_interval,
                                 shares_at_own_threshold)
from audit.metrics.verification import eer_auc_many
from audit.probes.base import OUTCOMES
from audit.probes.leakage import confusion_stats
from audit.seeding import rng_for

Z_POWER = float(sps.norm.ppf(0.975) + sps.norm.ppf(0.8))
"""Two-sided 5% test at 80% power: how many standard errors a difference must be to be told apart."""


@dataclass(frozen=True)
class Series:
    """One headline metric of one run, over units keyed by manifest row."""

    probe: str
    metric: str
    condition: str
    setting: str
    attribute: str
    group: str
    rows: np.ndarray
    subjects: np.ndarray
    kind: str
    """``share`` (mean of ``values``), ``gain`` (normalised gain of ``y`` vs each of ``pred``), ``auc`` (AUC of each
    of ``scores`` for ``y`` 1 against 0, averaged), ``folds`` (a cross-validated membership attack: ``cv``),
    ``pair_share``, ``share_at_rate`` or ``max_min``."""
    values: np.ndarray | None = None
    y: np.ndarray | None = None
    pred: np.ndarray | None = None
    k: int = 0
    parts: tuple = ()
    """``max_min``: the group series whose highest rate over lowest rate this is (a demographic differential)."""
    gallery: np.ndarray | None = None
    """``pair_share``: the gallery images' persons; the series is a share of (unit, gallery image) comparisons
    between different persons, ``accepts`` the (unit, gallery position) pairs counted (a group's FMR)."""
    accepts: np.ndarray | None = None
    scores: np.ndarray | None = None
    """``auc``: one row of scores per cross-validation repeat, one column per unit."""
    negatives: np.ndarray | None = None
    """``share_at_rate``: the highest impostor scores, between unit ``negative_pairs[j, 0]`` and gallery image
    ``negative_pairs[j, 1]``; ``values`` are the units' genuine scores and the series is the share of them at or
    above the threshold at false match rate ``rate`` (TAR at FMR), chosen again on every replicate."""
    negative_pairs: np.ndarray | None = None
    rate: float = 0.0
    within: bool = False
    """``share_at_rate``: the impostor comparisons are between two images of ``gallery`` (every image against each
    later one of another person; inversion's victims), not between the units and a gallery."""
    folds: int = 5
    """``gain`` and ``folds``: the cross-validation folds the attacker was fitted in (runs stored before it was kept: 5, every
    preset's), for the attacker-fit variance of a paired difference (:func:`fit_widened`)."""
    fitted: float = 1.0
    """``gain`` and ``folds``: the share of the attacker's folds that fitted a model (membership's strongest attack:
    the folds that chose the learned attacker, a score attack fitting nothing but thresholds the replicates choose
    again), which scales the attacker-fit variance a paired difference adds, as a single run's interval is widened
    (:func:`audit.metrics.stats.widen_for_training`); 1 for a leakage gain and for runs stored before it was kept."""
    chosen: bool = True
    """``folds``: the attack was chosen in every fold among several (membership's strongest attack, always in a run),
    which a paired difference's variance must cover (:func:`_added_variance`); False for one attack (simulations)."""
    complement: bool = False
    """``share_at_rate``: the series is one minus the share (FNMR: the genuine scores below the threshold)."""
    impostor_subjects: np.ndarray | None = None
    """``share_at_rate``: the persons of the units the impostor comparisons' first side indexes, when the series'
    units are only some of them (a group's FNMR at the whole run's threshold); default ``subjects``."""
    cv: tuple = ()
    """``folds`` (a membership attack cross-validated over persons): per repeat, its folds as (training units,
    their scores, test units, their scores); the series is the AUC of the pairs each fold scored
    (:func:`audit.probes.membership.fold_auc`), or with ``rate`` the share of members (``y`` 1) flagged at the
    threshold each fold's training non-members put at that false-positive rate, chosen again on every replicate
    (:func:`audit.probes.membership.rechosen_rate`), averaged over repeats."""

    @property
    def key(self) -> tuple:
        return (self.probe, self.metric, self.condition, self.setting, self.attribute, self.group)


def load_series(store, run_id: str) -> list[Series]:
    """Every headline series a run kept (empty for runs made before outcomes were stored)."""
    arts = store.artifacts(run_id)
    out = []
    for _, art in arts[arts["name"] == OUTCOMES].iterrows():
        doc = json.loads(bytes(art["data"]))
        rows, subjects = np.asarray(doc["rows"]), np.asarray(doc["subjects"], dtype=object)
        groups = {a: np.asarray(g, dtype=object) for a, g in doc.get("groups", {}).items()}
        gallery = doc.get("gallery") or {}
        gal_subjects = np.asarray(gallery.get("subjects", []), dtype=object)
        gal_groups = {a: np.asarray(g, dtype=object) for a, g in gallery.get("groups", {}).items()}
        pair_parts: dict[tuple, list[Series]] = {}
        for sd in doc["series"]:
            base = dict(probe=art["probe"], metric=sd["metric"], condition=sd["condition"], setting=sd["setting"],
                        attribute=sd["attribute"], kind=sd["kind"])
            if sd["kind"] == "share_at_rate":
                units = np.asarray(sd.get("units", range(len(rows))), int)
                within = sd.get("impostors") == "within"
                whole = Series(**base, group="all", rows=rows[units], subjects=subjects[units],
                               gallery=subjects if within else gal_subjects, within=within,
                               values=np.asarray(sd["positives"], float), rate=float(sd["rate"]),
                               negatives=np.asarray(sd["negatives"], float),
                               negative_pairs=np.asarray(sd["negative_pairs"], int).reshape(-1, 2),
                               complement=bool(sd.get("complement")))
                out.append(whole)
                if sd["metric"] == "fnmr" and not within and "units" not in sd:  # per-group FNMR at the whole
                    # run's threshold, chosen again on every replicate from all its impostor comparisons
                    out += _group_fnmr(whole, groups, gal_groups, lambda on: replace(
                        whole, rows=rows[on], subjects=subjects[on], values=whole.values[on],
                        impostor_subjects=subjects))
                continue
            if "units" in sd:  # measured on a subset of the artifact's units
                units = np.asarray(sd["units"], int)
                out.append(Series(**base, group="all", rows=rows[units], subjects=subjects[units],
                                  values=np.asarray(sd["values"], float)))
                continue
            if sd["kind"] == "pair_share":  # one group's FMR: units and gallery images of that group only
                attr, g = sd["attribute"], sd["group"]
                on_p, on_g = groups[attr] == g, gal_groups[attr] == g
                acc = np.asarray(sd["accepts"], int).reshape(-1, 2)
                acc = np.stack([np.cumsum(on_p)[acc[:, 0]] - 1, np.cumsum(on_g)[acc[:, 1]] - 1], 1)
                part = Series(**base, group=g, rows=rows[on_p], subjects=subjects[on_p], gallery=gal_subjects[on_g],
                              accepts=acc)
                out.append(part)
                pair_parts.setdefault((sd["metric"], sd["condition"], sd["setting"], attr), []).append(part)
                continue
            if sd["kind"] == "share":
                vals = np.asarray(sd["values"], float)
                out.append(Series(**base, group="all", rows=rows, subjects=subjects, values=vals))
                if sd["metric"] == "fnmr":  # per-group FNMR and its max/min differential from the same outcomes
                    # (runs made before FNMR kept its impostor scores: the whole run's threshold held fixed)
                    out += _group_fnmr(out[-1], groups, gal_groups, lambda on: replace(
                        out[-1], rows=rows[on], subjects=subjects[on], values=vals[on]))
            elif sd["kind"] == "folds":
                cv = tuple(tuple((np.asarray(f["train"], int), np.asarray(f["train_scores"], float),
                                  np.asarray(f["test"], int), np.asarray(f["test_scores"], float)) for f in rep)
                           for rep in sd["cv"])
                out.append(Series(**base, group="all", rows=rows, subjects=subjects, y=np.asarray(sd["y"], int),
                                  cv=cv, rate=float(sd.get("rate") or 0.0), folds=int(sd["folds"]),
                                  fitted=float(sd.get("fitted", 1.0))))
            elif sd["kind"] == "auc":
                out.append(Series(**base, group="all", rows=rows, subjects=subjects, y=np.asarray(sd["y"], int),
                                  scores=np.asarray(sd["scores"], float)))
            else:
                out.append(Series(**base, group="all", rows=rows, subjects=subjects, y=np.asarray(sd["y"]),
                                  pred=np.asarray(sd["pred"]), k=int(sd["k"]), folds=int(sd.get("folds", 5))))
        for (metric, cond, setting, attr), parts in pair_parts.items():  # e.g. fmr_max_min from the group FMRs
            if len(parts) >= 2:
                out.append(Series(art["probe"], metric.removeprefix("group_") + "_max_min", cond, setting, attr,
                                  "all", rows, subjects, "max_min", parts=tuple(parts)))
    return out


def _group_fnmr(whole: Series, groups: dict, gal_groups: dict, part) -> list[Series]:
    """Each group's FNMR (``part(mask)``: the whole run's FNMR series on that group's units) and their max/min, per
    attribute, over the groups the run measured (:func:`_probe_groups`)."""
    out = []
    for attr, lab in groups.items():
        parts = [replace(part(lab == g), metric="group_fnmr", attribute=attr, group=g)
                 for g in _probe_groups(lab, gal_groups.get(attr))]
        if len(parts) >= 2:
            out += [*parts, Series(whole.probe, "fnmr_max_min", whole.condition, whole.setting, attr, "all",
                                   whole.rows, whole.subjects, "max_min", parts=tuple(parts))]
    return out


def _probe_groups(probe_labels: np.ndarray, gallery_labels: np.ndarray | None) -> list[str]:
    """The groups the run itself measured (:meth:`audit.probes.identity.IdentityProbe._demographics`): labels on both
    the probe and the gallery side (a group without a gallery image has no impostor comparisons, so the run
    stores no rates for it), only when there are two or more; a paired group FNMR or max/min over other groups
    would not be the stored one. Outcomes without gallery groups (no gallery kept) use the probe side."""
    values = {v for v in probe_labels if isinstance(v, str)}
    if gallery_labels is not None:
        values &= set(gallery_labels.tolist())
    return sorted(values) if len(values) >= 2 else []


class PairedBootstrap:
    """Person draws shared by every model in a replicate."""

    def __init__(self, subjects: np.ndarray, n_boot: int, seed: int):
        self.persons = np.unique(subjects.astype(str))
        # one draw per replicate for both sides of a comparison between two persons (the gallery holds the same
        # persons; until 0.11.0 it had a draw of its own, and paired FMR differences covered 0.88 for 0.95 at 200
        # persons)
        self.counts = self._draw(rng_for(seed, "compare"), n_boot)

    def _draw(self, rng, n_boot: int) -> np.ndarray:
        n = len(self.persons)
        return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)]).astype(float)

    def stat(self, s: Series) -> tuple[float, np.ndarray]:
        """(value on everyone, value on every replicate) of one series."""
        if s.kind == "max_min":  # highest group rate over lowest: +inf when only some groups have none
            vals, boots = zip(*(self.stat(p) for p in s.parts))
            return _max_min(np.array(vals)[None])[0], _max_min(np.stack(boots, 1))
        idx = np.searchsorted(self.persons, s.subjects.astype(str))
        ones = np.ones(len(self.persons))
        if s.kind == "pair_share":
            return self._pair_share(s, idx)
        if s.kind == "share_at_rate":
            return self._share_at_rate(s, idx)
        if s.kind == "auc":
            return self._auc(s, idx)
        if s.kind == "folds":
            return self._folds(s, idx)
        if s.kind == "share":
            num = np.bincount(idx, weights=s.values, minlength=len(self.persons))
            den = np.bincount(idx, minlength=len(self.persons)).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                return float(num.sum() / den.sum()), (self.counts @ num) / (self.counts @ den)
        keep = s.y >= 0
        full, boots = [], []
        for p in s.pred:
            cells = np.zeros((len(s.y), s.k * s.k))
            cells[np.flatnonzero(keep), s.y[keep] * s.k + p[keep]] = 1
            per_person = np.zeros((len(self.persons), s.k * s.k))
            np.add.at(per_person, idx, cells)
            full.append(confusion_stats((ones @ per_person).reshape(1, s.k, s.k))["normalised_gain"][0])
            boots.append(confusion_stats((self.counts @ per_person).reshape(-1, s.k, s.k))["normalised_gain"])
        return float(np.mean(full)), np.mean(boots, axis=0)

    def _auc(self, s: Series, idx: np.ndarray) -> tuple[float, np.ndarray]:
        """AUC of each repeat's scores on everyone and on every replicate (a unit weighs as often as its person is
        drawn), averaged over repeats."""
        pos, neg = s.y == 1, s.y == 0
        w = self.counts[:, idx]
        full, boots = [], []
        for sc in s.scores:
            full.append(eer_auc_many(sc[neg], sc[pos], np.ones((1, neg.sum())), np.ones((1, pos.sum())))[3][0])
            boots.append(eer_auc_many(sc[neg], sc[pos], w[:, neg], w[:, pos])[3])
        return float(np.mean(full)), np.mean(boots, axis=0)

    def _folds(self, s: Series, idx: np.ndarray) -> tuple[float, np.ndarray]:
        """A cross-validated membership attack's AUC, or TPR at ``s.rate``, on everyone and on every replicate (a
        unit weighs as often as its person is drawn; every fold's threshold chosen again on those weights), averaged
        over repeats, as the run computes it."""
        from audit.probes.membership import fold_auc, rechosen_rate

        def of(w):
            per = [rechosen_rate(list(rep), s.y, s.y == 1, w, s.rate) if s.rate else fold_auc(list(rep), s.y, w)
                   for rep in s.cv]
            with np.errstate(invalid="ignore"):
                return np.mean(per, axis=0)

        return float(of(np.ones((1, len(idx))))[0]), of(self.counts[:, idx])

    def _impostor_pairs(self, idx: np.ndarray, gal: np.ndarray) -> np.ndarray:
        """Impostor comparisons per (probe person, gallery person): every unit against every gallery image of another
        person (a person's probe against their own gallery image is genuine)."""
        n = len(self.persons)
        den = np.outer(np.bincount(idx, minlength=n), np.bincount(gal, minlength=n)).astype(float)
        np.fill_diagonal(den, 0)
        return den

    def _impostors(self, s: Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A ``share_at_rate`` series' (unit persons, gallery persons, probe-side persons of the impostor comparisons'
        first side, comparisons per person pair)."""
        idx = np.searchsorted(self.persons, s.subjects.astype(str))
        gal = np.searchsorted(self.persons, s.gallery.astype(str))
        if s.within:  # comparisons between two of the gallery's images, each against every later one
            return idx, gal, gal, pairs_within(gal, len(self.persons))
        first = idx if s.impostor_subjects is None else np.searchsorted(self.persons, s.impostor_subjects.astype(str))
        return idx, gal, first, self._impostor_pairs(first, gal)

    def at_fixed_threshold(self, s: Series) -> Series:
        """A ``share_at_rate`` series as a plain share at the whole sample's threshold (each unit's accept), as runs
        made before the impostor scores were kept stored it (FNMR: each unit's miss); a max/min's groups so; other
        series as they are."""
        if s.kind == "max_min":
            return replace(s, parts=tuple(self.at_fixed_threshold(p) for p in s.parts))
        if s.kind != "share_at_rate":
            return s
        k = int(np.floor(s.rate * self._impostors(s)[3].sum()))
        neg = np.sort(s.negatives)[::-1]
        tau = np.nextafter(neg[k], np.inf) if k < len(neg) else neg[-1]
        return replace(s, kind="share", values=((s.values < tau) if s.complement else (s.values >= tau)).astype(float),
                       complement=False)

    def _share_at_rate(self, s: Series, idx: np.ndarray) -> tuple[float, np.ndarray]:
        """TAR at FMR: each replicate chooses the threshold again on its own draw of both sides' persons
        (:func:`audit.metrics.stats.shares_at_own_threshold`, as the stored interval does), so a paired difference
        carries both models' threshold variability."""
        _, gal, first, compared = self._impostors(s)

        def persons_of(j):
            return first[s.negative_pairs[j, 0]], gal[s.negative_pairs[j, 1]]

        args = (s.values, idx, s.negatives, persons_of, compared, s.rate)
        ones = np.ones((1, len(self.persons)))
        value = float(shares_at_own_threshold([(ones, ones)], *args)[0])
        chunk = max(1, int(4e6 // max(len(s.negatives), 1)))
        c = self.counts
        boots = shares_at_own_threshold(((c[a:a + chunk],) * 2 for a in range(0, len(c), chunk)), *args)
        return (1 - value, 1 - boots) if s.complement else (value, boots)

    def _pair_share(self, s: Series, idx: np.ndarray) -> tuple[float, np.ndarray]:
        """Accepted over compared person pairs, each weighed by its two persons' counts in the replicate's draw."""
        n = len(self.persons)
        gal = np.searchsorted(self.persons, s.gallery.astype(str))
        num = np.zeros((n, n))
        np.add.at(num, (idx[s.accepts[:, 0]], gal[s.accepts[:, 1]]), 1)
        den = self._impostor_pairs(idx, gal)
        c = self.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            boots = np.einsum("bp,pg,bg->b", c, num, c) / np.einsum("bp,pg,bg->b", c, den, c)
            return float(num.sum() / den.sum()), boots


def _kind(s: Series) -> str:
    """A series' kind, a max/min's that of its groups."""
    return s.parts[0].kind if s.kind == "max_min" and s.parts else s.kind


def _max_min(rates: np.ndarray) -> np.ndarray:
    """:func:`audit.metrics.demographic.ratio_max_min` of each row of group rates (one row per replicate)."""
    return np.array([ratio_max_min(dict(enumerate(row))) for row in rates])


def _interval(value: float, boots: np.ndarray, persons: int) -> tuple[float, float]:
    """Expanded-percentile 95% interval on ``persons`` (resamples may be infinite); NaN for a non-finite value."""
    if not np.isfinite(value):
        return float("nan"), float("nan")
    est = percentile_interval(value, boots, persons, expanded_alpha(0.05, persons), unbounded=True)
    return est.ci_low, est.ci_high


def verdict(diff: float, lo: float, hi: float, persons: int, name_a: str, name_b: str) -> tuple[str, int | None]:
    """Plain words for B - A and, when the interval holds 0, the persons that would tell it apart."""
    if np.isnan(diff):  # both infinite, or a model's value undefined (an AUC or gain over one class)
        return ("no finite difference (a ratio is infinite in both: groups without errors; or a model's value is "
                "undefined on these persons)"), None
    if not np.isfinite(diff):
        return "no finite difference (a ratio is infinite: a group without errors)", None
    if lo > 0:
        return f"{name_b} higher", None
    if hi < 0:
        return f"{name_a} higher", None
    se = (hi - lo) / (2 * 1.96)
    if not np.isfinite(se):  # an observed difference whose interval has no end (a ratio over a group without errors)
        return (f"cannot be told apart with {persons} persons (the interval is unbounded: in some resamples a group "
                "has no errors)"), None
    if diff == 0 or not se > 0:
        return f"cannot be told apart with {persons} persons (no difference observed)", None
    need = int(np.ceil(persons * (Z_POWER * se / abs(diff)) ** 2))
    return f"cannot be told apart with {persons} persons", need


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values."""
    order = np.argsort(pvalues)
    m, out, running = len(pvalues), [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def compare_runs(store, run_ids: list[str], labels: list[str], directions: dict, reference: int = 0,
                 n_boot: int = 1000, seed: int = 0, probes: set[str] | None = None) -> dict:
    """Paired differences of every model against the reference run, rankings and pairwise verdicts, for every
    headline series all runs kept on the same units (of ``probes`` only, when given: the comparable ones).
    ``directions``: series key -> the stored direction.

    ``missing``: the runs that kept no outcomes at all (made before faceaudit kept them); ``unpaired``: the runs
    that kept outcomes, but none that pair with another run's (a probe only they ran, such as an attribute
    model's leakage, or other units). Kept apart: only the first is cured by auditing again."""
    every = [load_series(store, r) for r in run_ids]
    missing = [labels[i] for i, ss in enumerate(every) if not ss]
    per_run = [{s.key: s for s in ss if probes is None or s.probe in probes} for ss in every]
    keys = list(dict.fromkeys(k for d in per_run for k in d))
    if not keys:
        return {"rows": [], "rankings": [], "missing": missing, "unpaired": [], "persons": 0, "n_boot": n_boot}
    firsts = [next(d[k] for d in per_run if k in d) for k in keys]
    subjects = np.concatenate([s.subjects for s in firsts] + [s.gallery for s in firsts if s.gallery is not None])
    boot = PairedBootstrap(subjects, n_boot, seed)
    rows, rankings = [], []
    for key in keys:
        # The runs that kept this series on the same units (an attribute model has no identity series).
        have = [i for i, d in enumerate(per_run) if key in d]
        first = per_run[have[0]][key]
        have = [i for i in have if np.array_equal(np.sort(per_run[i][key].rows), np.sort(first.rows))]
        if len(have) < 2:
            continue
        ref = reference if reference in have else have[0]
        series = {i: per_run[i][key] for i in have}
        if len({_kind(s) for s in series.values()}) > 1:  # a run made before TAR / SAR / FNMR kept its impostor
            # scores: every run's threshold is held at its whole sample's value, as that run's outcomes have it
            series = {i: boot.at_fixed_threshold(s) for i, s in series.items()}
        stats = {i: boot.stat(s) for i, s in series.items()}
        ref_val, ref_boot = stats[ref]
        # a membership TPR rests on the member persons (the non-members only place the thresholds)
        n_persons = (int((first.y == 1).sum()) if first.kind == "folds" and first.rate
                     else len(np.unique(first.subjects.astype(str))))
        base = {"probe": key[0], "metric": key[1], "condition": key[2], "setting": key[3], "attribute": key[4],
                "group": key[5], "persons": n_persons, "direction": _direction(directions, key)}
        few = too_few(first)
        pair = _pair_interval(first, n_persons, few)
        fitted = {i: s.fitted for i, s in series.items()}
        for i in have:
            if i == ref:
                continue
            val, bs = stats[i]
            d, lo, hi = pair(stats[ref], stats[i], (fitted[ref], fitted[i]))
            words, need = verdict(d, lo, hi, n_persons, labels[ref], labels[i])
            if few is not None and np.isfinite(d):
                words, need = few, None
            ratio = rlo = rhi = None
            if first.kind in ("share", "pair_share", "share_at_rate") or (first.kind == "folds" and first.rate):
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = val / ref_val if ref_val else (float("inf") if val else float("nan"))
                    rlo, rhi = _interval(ratio, bs / ref_boot, n_persons)
            rows.append({**base, "a": labels[ref], "b": labels[i], "value_a": ref_val, "value_b": val,
                         "diff": d, "ci_low": lo, "ci_high": hi, "ratio": ratio, "ratio_low": rlo, "ratio_high": rhi,
                         "verdict": words, "persons_needed": need})
            rows[-1]["outcome"] = outcome(rows[-1])
        if len(have) > 2:  # a model without a value is left out of its ranking and named (not_measured)
            ranking = _ranking([stats[i] for i in have], [labels[i] for i in have], n_persons, few, pair,
                               first.folds if first.kind in FITTED_KINDS else None, seed,
                               [fitted[i] for i in have], first.kind in CHOSEN_KINDS and first.chosen)
            if len(ranking["models"]) >= 2:
                rankings.append({**base, **ranking})
    paired = {r[k] for r in rows for k in ("a", "b")}
    unpaired = [lab for lab in labels if lab not in paired and lab not in missing]
    return {"rows": rows, "rankings": rankings, "missing": missing, "unpaired": unpaired,
            "persons": len(boot.persons), "n_boot": n_boot}


def _direction(directions: dict, key: tuple) -> str:
    """The stored direction of a series; one the runs stored at another setting only (a disparity across groups is
    stored at the demographic FMR, and paired at every FMR the outcomes hold) takes its metric's there, so that one
    disparity is not riskier at one FMR and without a direction at another (a review of the comparison)."""
    if key in directions:
        return directions[key]
    same = {d for k, d in directions.items() if k[:2] == key[:2] and k[2:3] == key[2:3] and k[4:] == key[4:]}
    return same.pop() if len(same) == 1 else "neutral"


def _pair_interval(s: Series, persons: int, few: str | None):
    """The 95% interval of B - A for the series ``s`` (one measure of every run), as a function of the two runs'
    ``(value, replicates)``: ``(difference, low, high)``. One function for the paired rows and the rankings' pairwise
    verdicts, so that the two never disagree: the expanded percentile on the persons; for leakage gains and
    membership attacks each model's attacker-fit variance added in the share of its folds that fitted a model
    (``fitted``, :func:`fit_widened`); for a group's rate whose interval has no width (a handful of
    persons who all fail or none) the exact-binomial floor of the two rates (:func:`_exact_floor`)."""
    group_rate = s.group != "all" and s.kind in ("share", "pair_share", "share_at_rate")

    def pair(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray],
             fitted: tuple[float, float] = (1.0, 1.0)) -> tuple[float, float, float]:
        d, lo, hi = _difference(a, b, persons)
        same = a[0] == b[0] and np.array_equal(a[1], b[1], equal_nan=True)  # one attacker fit (a run against its
        # own re-run): nothing of the fit varies between the two
        if s.kind in FITTED_KINDS and not same:
            with np.errstate(invalid="ignore"):
                lo, hi = fit_widened(d, lo, hi, b[1] - a[1], a[1], b[1], s.folds, fitted,
                                     s.kind in CHOSEN_KINDS and s.chosen)
        if few is None and group_rate and np.isfinite(d) and lo == hi:
            lo, hi = _exact_floor(a[0], b[0], persons, lo, hi)
        return d, lo, hi
    return pair


def _difference(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray], persons: int) -> tuple[float, float, float]:
    """B - A of two runs' ``(value, replicates)`` with its expanded-percentile interval on ``persons``, nothing added
    (the plain case of :func:`_pair_interval`)."""
    with np.errstate(invalid="ignore"):  # inf - inf: both infinite
        d, db = b[0] - a[0], b[1] - a[1]
    return (d, *_interval(d, db, persons))


FITTED_KINDS = ("gain", "folds")
"""Series of an attacker fitted, or chosen, on other folds' persons (leakage's gain; membership's strongest attack):
a paired difference carries each model's attacker-fit variance too (:func:`fit_widened`)."""
CHOSEN_KINDS = ("folds",)
"""Series of an attack chosen in every fold among several (membership's strongest): the choice, made apart for each
model, varies beyond what the fit variance covers, and the replicates hold it fixed (:func:`_added_variance`)."""

MIN_GROUP_PERSONS = 10
"""A group's paired rate (and a max/min over groups) gets no verdict on fewer persons than this (in its smallest
group): a one-person group's rates differ by whole outcomes, and its interval has no width to speak of."""


def _group_persons(s: Series) -> int | None:
    """The persons of a group series, or of the smallest group behind a max/min; None for a whole-sample series."""
    if s.kind == "max_min":
        return min(len(np.unique(p.subjects.astype(str))) for p in s.parts) if s.parts else None
    return len(np.unique(s.subjects.astype(str))) if s.group != "all" else None


def too_few(s: Series) -> str | None:
    """The verdict of a group series on too few persons (:data:`MIN_GROUP_PERSONS`), else None."""
    n = _group_persons(s)
    if n is None or n >= MIN_GROUP_PERSONS:
        return None
    where = "its smallest group has" if s.kind == "max_min" else "the group has"
    return f"too few persons to tell apart ({where} {n}; a verdict needs {MIN_GROUP_PERSONS})"


def _exact_floor(a: float, b: float, persons: int, lo: float, hi: float) -> tuple[float, float]:
    """The interval of B - A widened to at least Newcombe's (hybrid score) interval from the exact-binomial
    (Clopper-Pearson) intervals of the two rates on ``persons``, as a single run's rate has its floor."""
    la, ua = clopper_pearson(a, persons)
    lb, ub = clopper_pearson(b, persons)
    d = b - a
    return (min(lo, d - float(np.hypot(b - lb, ua - a))), max(hi, d + float(np.hypot(ub - b, a - la))))


def _fit_variance(boots_a: np.ndarray, boots_b: np.ndarray, folds: int,
                  fitted: tuple[float, float] = (1.0, 1.0)) -> float:
    """The two attackers' fit variance a paired leakage or membership difference adds (Nadeau and Bengio: each
    model's bootstrap variance over folds - 1, times the share of its folds that fitted a model; fitted apart, so
    they add)."""
    return sum(f * float(np.nanvar(b)) for b, f in zip((boots_a, boots_b), fitted)
               if f > 0 and np.isfinite(b).any()) / max(folds - 1, 1)


def _added_variance(diffs: np.ndarray, boots_a: np.ndarray, boots_b: np.ndarray, folds: int,
                    fitted: tuple[float, float] = (1.0, 1.0), chosen: bool = False) -> float:
    """The variance a paired difference adds to its replicates' own (``var(diffs)``): the attackers' fit variance
    (:func:`_fit_variance`); for an attack ``chosen`` in every fold among several (membership's strongest), at least
    enough to reach the two runs' own variances added, each widened by Nadeau and Bengio's factor in full (the choice
    is fitted in every fold, whatever it chose). The replicates hold every fold's choice and fit fixed, and the two
    models choose apart: on two models with equally strong membership signal (the probe's own cross-validation,
    audit/compare/coverage.py, ``membership_auc_learned``) the pairing's variance plus the fit variance made the AUC
    difference's interval 0.81x as wide as its spread needs and told the models apart in 13% of datasets at 60
    members (TPR at FPR 0.1 at 200 members: 0.82x, 11%), where the bootstrap's variance was 61% of the difference's
    and each run's own 38%. The pairing still narrows every other difference."""
    fit = _fit_variance(boots_a, boots_b, folds, fitted)
    if not chosen:
        return fit
    var_d = float(np.nanvar(diffs)) if np.isfinite(diffs).any() else 0.0
    own = sum(float(np.nanvar(b)) for b in (boots_a, boots_b) if np.isfinite(b).any())
    return max(fit, own * (1 + 1 / max(folds - 1, 1)) - var_d)


def fit_widened(d: float, lo: float, hi: float, diffs: np.ndarray, boots_a: np.ndarray, boots_b: np.ndarray,
                folds: int, fitted: tuple[float, float] = (1.0, 1.0), chosen: bool = False) -> tuple[float, float]:
    """The interval ``[lo, hi]`` of a paired difference ``d`` of two leakage gains (or membership attacks), widened for
    the variance of fitting each model's attacker, in the share ``fitted`` of each model's folds that fitted one (a
    membership fold that chose a score attack fits nothing but thresholds, which the replicates choose again). The replicates hold every model's out-of-fold predictions fixed, so they measure how the
    persons vary, not how an attacker fitted on other persons would: for one model the single-run interval widens by
    Nadeau and Bengio's factor (:func:`audit.metrics.stats.widen_for_training`: fit variance about the estimate's
    variance over (folds - 1)). The two models' attackers are fitted apart, so their fit variances add to the
    difference's and do not cancel as the persons' do: the half-widths grow by
    sqrt(var(diff) + (var(A) + var(B)) / (folds - 1)) / sd(diff). Simulated (two models with equal leakage, a
    logistic attacker per model, 5 folds x 2 repeats; audit/compare/coverage.py, ``gain``): 'told apart' in 13.3% / 12.5% of datasets at 60 / 150 persons before, 7.3% / 6.0% after (nominal 5%)."""
    if not (np.isfinite(d) and np.isfinite(lo) and np.isfinite(hi)):
        return lo, hi
    var_d = float(np.nanvar(diffs)) if np.isfinite(diffs).any() else 0.0
    fit = _added_variance(diffs, boots_a, boots_b, folds, fitted, chosen)
    if fit <= 0:
        return lo, hi
    if var_d > 0:
        f = float(np.sqrt((var_d + fit) / var_d))
        return d - f * (d - lo), d + f * (hi - d)
    half = float(sps.norm.ppf(0.975)) * float(np.sqrt(fit))  # every replicate alike: the fit variance alone
    return min(lo, d - half), max(hi, d + half)


def _ranking(stats: list[tuple[float, np.ndarray]], labels: list[str], persons: int, few: str | None = None,
             pair=None, folds: int | None = None, seed: int = 0, fitted: list[float] | None = None,
             chosen: bool = False) -> dict:
    """Rank (1 = highest value) with its 95% interval over the replicates, and Holm-adjusted pairwise verdicts.

    A model without a value (not measured, NaN) is left out and listed in ``not_measured``; an infinite value (a
    max/min over groups one of which has no errors: the largest disparity) is ranked, at its end. Each pair's
    p-value uses every replicate where both its models are defined, so one model undefined on some replicates does
    not decide another pair's verdict; its interval is the paired rows' (``pair``: :func:`_pair_interval`), and
    for leakage gains and membership attacks (``folds``) the p-value too carries the attacker-fit variance (a normal
    approximation on the widened spread, :func:`fit_widened`), and so do the rank intervals: each model's replicates
    get independent normal noise of its attacker-fit variance (its replicates' variance over folds - 1 times its
    ``fitted`` share, as a single run's interval is widened; for an attack ``chosen`` in every fold, its whole variance
    widened by Nadeau and Bengio's factor, so that ranks never part where the floored pairwise difference of
    :func:`_added_variance` cannot; drawn from ``seed`` and the model's label) before they are ranked.
    Without ``pair``, the plain expanded-percentile interval.

    Ranks are "min" ranks (:func:`scipy.stats.rankdata`): models with equal values share the better rank, on
    everyone and in every replicate, so two models that never differ get the same rank and interval instead of
    an order made up by the run order.

    A pair is told apart only when its Holm-adjusted bootstrap p-value is under 0.05 *and* its paired 95%
    interval (the expanded-percentile interval of the paired rows, on the same replicates and ``persons``)
    excludes 0. Holm alone, on plain percentile tail shares, can pass a small-sample difference whose expanded
    interval holds 0, and one report must not say "told apart" in the rankings and "cannot be told apart" in the
    paired row of the same two models; requiring both keeps every verdict the paired rows would give or a
    stricter one (Holm over all pairs), and leaves the p-values as they were."""
    measured = [i for i, (v, _) in enumerate(stats) if not np.isnan(v)]
    not_measured = [{"model": labels[i], "value": float(stats[i][0]), "reason": "not measured"}
                    for i in range(len(stats)) if i not in measured]
    stats, labels = [stats[i] for i in measured], [labels[i] for i in measured]
    fitted = [1.0] * len(stats) if fitted is None else [fitted[i] for i in measured]
    if not stats:
        return {"models": [], "pairs": [], "not_measured": not_measured}
    values = np.array([v for v, _ in stats])
    boots = np.stack([b for _, b in stats], axis=1)  # replicates x models
    if pair is None:
        pair = lambda a, b, fitted=None: _difference(a, b, persons)  # noqa: E731
    ok = ~np.isnan(boots).any(1)
    n = len(labels)  # (no replicate with every value defined: every rank is possible)
    ranked = boots[ok]
    if folds is not None and len(ranked) > 1:  # the attackers' fit variance, each model's own (fitted apart)
        # a chosen attack: each model's replicates varied by its own variance widened in full, so that two models'
        # ranks never part where their pairwise difference (floored at the two runs' own widened variances) cannot
        scale = [(1 + 1 / max(folds - 1, 1)) if chosen else f / max(folds - 1, 1) for f in fitted]
        sd = [float(np.sqrt(k * np.var(c[np.isfinite(c)]))) if np.isfinite(c).sum() > 1 else 0.0
              for c, k in zip(ranked.T, scale)]
        # each model's noise from a stream of its own (by its label): one stream filled column by column gave a model
        # other noise when the runs were listed in another order, and rank intervals moved (a review of
        # reproducibility: 14 of 300 orderings of three close models)
        noise = np.stack([rng_for(seed, "rank-noise", label).normal(size=len(ranked)) for label in labels], axis=1)
        ranked = ranked + noise * np.array(sd)
    ranks = sps.rankdata(-ranked, method="min", axis=1) if ok.any() else np.array([[1] * n, [n] * n])
    point = sps.rankdata(np.where(np.isnan(values), np.inf, -values), method="min")  # undefined last
    # the rank interval at the expanded percentile every other interval is read at (plain 2.5% / 97.5% until 0.11.0,
    # a little narrow on few persons; a review of the statistics)
    tail = expanded_alpha(0.05, persons) / 2
    models = [{"model": labels[i], "value": float(values[i]), "rank": int(point[i]),
               "rank_low": int(np.quantile(ranks[:, i], tail, method="inverted_cdf")),
               "rank_high": int(np.quantile(ranks[:, i], 1 - tail, method="inverted_cdf"))} for i in range(len(labels))]
    pairs, pvals = [], []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            with np.errstate(invalid="ignore"):  # inf - inf: both infinite, neither higher
                d = boots[:, j] - boots[:, i]
            d = d[~np.isnan(d)]  # every replicate where both are defined
            p = min(1.0, 2 * min((np.sum(d <= 0) + 1) / (len(d) + 1), (np.sum(d >= 0) + 1) / (len(d) + 1)))
            if folds is not None and np.isfinite(values[j] - values[i]) and len(d) > 1:
                sd = float(np.sqrt(np.var(d) + _added_variance(d, boots[:, i], boots[:, j], folds,
                                                               (fitted[i], fitted[j]), chosen)))
                p = max(p, float(2 * sps.norm.sf(abs(values[j] - values[i]) / sd))) if sd > 0 else p
            pairs.append((i, j))
            pvals.append(p)
    adjusted = holm(pvals)
    verdicts = []
    for (i, j), p in zip(pairs, adjusted):
        # the paired rows' interval
        diff, lo, hi = pair((values[i], boots[:, i]), (values[j], boots[:, j]), (fitted[i], fitted[j]))
        words = ("no finite difference" if not np.isfinite(diff) else
                 "too few persons to tell apart" if few is not None else
                 "cannot be told apart" if p >= 0.05 or not (lo > 0 or hi < 0) else
                 f"{labels[j]} higher" if lo > 0 else f"{labels[i]} higher")
        verdicts.append({"a": labels[i], "b": labels[j], "p_holm": float(p), "verdict": words})
    return {"models": sorted(models, key=lambda m: m["rank"]), "pairs": verdicts, "not_measured": not_measured}


def directions_of(metrics: pd.DataFrame) -> dict:
    """Series key -> stored direction, from a run's metric rows."""
    return {(r.probe, r.metric, r.condition, r.setting, r.attribute, r.group): r.direction
            for r in metrics.itertuples()}


VERDICT_KINDS = ("B higher", "A higher", "cannot be told apart", "no finite difference")
RISK_KINDS = ("riskier", "safer", "no direction")
"""What a difference told apart means for model B, by the measure's stored direction (a measure such as a count or
a chance level has none)."""


def risk_of(row: dict) -> str:
    """``riskier``, ``safer`` or ``no direction``: what B higher / A higher means on this row's measure for B."""
    sign = {"higher_is_riskier": 1, "lower_is_riskier": -1}.get(row.get("direction"), 0)
    if not sign or row["outcome"] not in ("B higher", "A higher"):
        return "no direction"
    return "riskier" if (row["outcome"] == "B higher") == (sign > 0) else "safer"


def outcome(row: dict) -> str:  # kept in each row by compare_runs
    """The kind of a paired row's verdict: ``B higher``, ``A higher``, ``cannot be told apart`` or
    ``no finite difference`` (A is the reference run)."""
    words = row["verdict"]
    if words == f"{row['b']} higher":
        return "B higher"
    if words == f"{row['a']} higher":
        return "A higher"
    return "no finite difference" if words.startswith("no finite") else "cannot be told apart"


def summarise(rows: list[dict], top: int = 3) -> list[dict]:
    """Paired rows (of :func:`compare_runs`) in a few lines: per probe and pair of models (A, B), how many measures B is higher on, A higher,
    cannot be told apart (and without a finite difference), of the differences told apart how many make B riskier
    or safer by the measure's stored direction (``risk``), and the ``top`` largest differences whose interval
    excludes 0 (rates and shares before ratios, whose differences are on another scale).

    Clean FNMR is one minus clean TAR at the same FMR (one threshold, the same genuine comparisons): where both
    rows are there, the FNMR row is not counted (``merged`` says how many), so one effect counts once.
    A measure at an operating point the data cannot back (its setting holds ``;unsupported``: too few impostor
    comparisons for the FMR) is counted apart, in ``unsupported`` (and ``unsupported_apart``: of those, how many
    were told apart), never in the riskier / safer tallies."""
    out: dict[tuple, dict] = {}
    tars = {_same_as_tar(r) for r in rows if r["metric"] == "tar_at_fmr"}
    for r in rows:
        s = out.setdefault((r["probe"], r["a"], r["b"]), {"probe": r["probe"], "a": r["a"], "b": r["b"], "measures": 0,
                                                  "counts": dict.fromkeys(VERDICT_KINDS, 0),
                                                  "risk": dict.fromkeys(RISK_KINDS, 0), "largest": [], "merged": 0,
                                                  "unsupported": 0, "unsupported_apart": 0})
        same_as_tar = r["metric"] == "fnmr" and r.get("condition") == "clean" and _same_as_tar(r) in tars
        if ";unsupported" in (r.get("setting") or ""):
            if not same_as_tar:
                s["unsupported"] += 1
                s["unsupported_apart"] += r["outcome"] in ("B higher", "A higher")
            continue
        if same_as_tar:
            s["merged"] += 1
            continue
        s["measures"] += 1
        s["counts"][r["outcome"]] += 1
        if r["outcome"] in ("B higher", "A higher"):
            s["largest"].append(r)
            s["risk"][risk_of(r)] += 1
    for s in out.values():
        s["largest"] = sorted(s["largest"], key=lambda r: (r["ratio"] is None, -abs(r["diff"])))[:top]
    return sorted(out.values(), key=lambda s: (s["probe"], s["a"], s["b"]))


def _same_as_tar(row: dict) -> tuple:
    """The key a clean FNMR row shares with the clean TAR row at the same FMR (and a TAR row's own)."""
    return tuple(row.get(k) for k in ("probe", "a", "b", "condition", "setting", "attribute", "group"))


def model_verdicts(summary: list[dict]) -> list[dict]:
    """:func:`summarise` per pair of models (A, B), over their probes: measures, how many B is higher and A higher
    on, how many cannot be told apart, and the per-probe lines. A probe a reference run did not run compares
    against the first run that did, so one model B can have more than one A."""
    out: dict[tuple, dict] = {}
    for s in summary:
        m = out.setdefault((s["a"], s["b"]), {"a": s["a"], "b": s["b"], "measures": 0,
                                    "counts": dict.fromkeys(VERDICT_KINDS, 0), "risk": dict.fromkeys(RISK_KINDS, 0),
                                    "probes": [], "merged": 0, "unsupported": 0, "unsupported_apart": 0})
        m["measures"] += s["measures"]
        for k in ("merged", "unsupported", "unsupported_apart"):
            m[k] += s.get(k, 0)
        m["counts"] = {k: m["counts"][k] + s["counts"][k] for k in VERDICT_KINDS}
        m["risk"] = {k: m["risk"][k] + s["risk"][k] for k in RISK_KINDS}
        m["probes"].append(s)
    return list(out.values())
