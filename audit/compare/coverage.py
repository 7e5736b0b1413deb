"""Known-truth check of the paired intervals (see :mod:`audit.probes.coverage` for the single-run ones).

Two models see the same persons: each genuine comparison's score is a person effect shared by both
models (intra-class correlation 0.5, correlation 0.7 between the models) plus each model's own noise,
with true FNMR 0.05 for model A and 0.08 for model B at the threshold. The paired bootstrap of
:mod:`audit.compare.paired` gives B - A; the truth is 0.03.

``fmr``: the same for an impostor rate that compares two persons (a group's FMR): each impostor score is a
probe-person effect, a gallery-person effect (each shared by the models with correlation 0.7; one person's two
correlated :data:`audit.probes.coverage.SIDES_CORR`, as on real models) and noise, variances 0.2 / 0.2 / 0.6, with
true FMR 0.01 for A and 0.02 for B; the paired bootstrap weighs both sides by one draw of persons (``pair_share``);
the truth is 0.01.

``tar``: TAR at FMR 0.01 with each model's threshold chosen on its own impostor scores (as above), 0.95 for A and
0.92 for B; the paired bootstrap chooses both thresholds again on every replicate (``share_at_rate``); the truth is
-0.03. ``tar_fixed`` holds each threshold at its whole sample's value instead, for comparison.

``gain``: two models with equally strong leakage of one attribute, an attacker fitted per model
(:func:`sim_paired_gain`); the truth is 0. ``gain_unwidened`` without the attacker-fit variance.

``fnmr_threshold``: FNMR as compare measures it on real runs, one minus the share of genuine scores at or above
the threshold estimated from the (clean) impostor scores, chosen again on every replicate (the same data as
``tar``; true FNMR 0.05 and 0.08, truth 0.03); ``fnmr_fixed`` holds the thresholds at their whole sample's value,
as comparisons did before FNMR kept its impostor scores (the ``fnmr`` simulator's threshold is known, not
estimated, so it cannot see this). ``group_fnmr``: one group's FNMR (half the persons) at that threshold, chosen
again on every replicate from every impostor comparison of the run (the truth is 0.03 too).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from audit.compare.paired import PairedBootstrap, Series, _interval
from audit.metrics.stats import Estimate
from audit.probes.coverage import gallery_side, tally

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


TRUE_FMR = (0.01, 0.02)


def _shared(rng, n: int) -> np.ndarray:
    """Each model's person effects (unit variance), correlated SHARED between the two models."""
    common = rng.normal(0, 1, n)
    return np.stack([SHARED * common + np.sqrt(1 - SHARED ** 2) * rng.normal(0, 1, n) for _ in TRUE_FMR])


def _sides(rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each model's person effects as a probe and as a gallery entry (:func:`_shared` each), one person's two
    correlated :data:`audit.probes.coverage.SIDES_CORR`."""
    probe = _shared(rng, n)
    return probe, gallery_side(probe, _shared(rng, n))


def sim_paired_fmr(rng, n: int, n_boot: int) -> tuple[Estimate, float]:
    m = 1 + rng.poisson(2.0, n)
    subjects = np.repeat(np.arange(n), m).astype(str)
    probe_fx, gallery_fx = _sides(rng, n)
    impostor = np.repeat(np.arange(n), m)[:, None] != np.arange(n)[None, :]
    series = []
    for k, fmr in enumerate(TRUE_FMR):
        score = (np.sqrt(0.2) * probe_fx[k][np.repeat(np.arange(n), m)][:, None] + np.sqrt(0.2) * gallery_fx[k][None]
                 + np.sqrt(0.6) * rng.normal(0, 1, impostor.shape))
        accepts = np.argwhere((score >= sps.norm.isf(fmr)) & impostor)  # unit variance: P(accept) = fmr
        series.append(Series("identity", "group_fmr", "clean", "", "", "g", np.arange(len(subjects)), subjects,
                             "pair_share", gallery=np.arange(n).astype(str), accepts=accepts))
    boot = PairedBootstrap(subjects, n_boot, int(rng.integers(2**31)))
    (a, ab), (b, bb) = (boot.stat(s) for s in series)
    lo, hi = _interval(b - a, bb - ab, n)
    return Estimate(b - a, lo, hi, int(impostor.sum())), TRUE_FMR[1] - TRUE_FMR[0]


TRUE_TAR, TAR_FMR = (0.95, 0.92), 0.01


def sim_paired_tar(rng, n: int, n_boot: int, fixed: bool = False, miss: bool = False,
                   group: bool = False) -> tuple[Estimate, float]:
    """TAR at FMR 0.01, each model's threshold its own: impostor scores as :func:`sim_paired_fmr`'s (unit variance, so
    the true threshold is the normal 1% tail), genuine scores a person effect (shared by the models, as FNMR's) plus
    noise around a mean that gives true TAR 0.95 for A and 0.92 for B. With ``fixed`` each model's threshold is held at
    its whole sample's value on every replicate (what comparisons did before impostor scores were kept). With ``miss``
    the series is FNMR, one minus that share (identity's FNMR outcomes), and the truth is FNMR's difference. With
    ``group`` (and ``miss``) it is one group's FNMR (a seeded half of the persons; the truth is the same) at the whole
    run's threshold, chosen again on every replicate from every impostor comparison, as compare reads a group's FNMR
    from identity's outcomes (``impostor_subjects``), with the interval the paired rows give it (its persons, the
    exact-binomial floor of :func:`audit.compare.paired._pair_interval`)."""
    from dataclasses import replace

    from audit.compare.paired import _pair_interval
    from audit.probes.base import kept_impostors

    m = 1 + rng.poisson(2.0, n)
    person = np.repeat(np.arange(n), m)
    subjects = person.astype(str)
    (probe_fx, gallery_fx), genuine_fx = _sides(rng, n), _shared(rng, n)
    impostor = person[:, None] != np.arange(n)[None, :]
    rows, cols = np.nonzero(impostor)
    series = []
    boot = PairedBootstrap(subjects, n_boot, int(rng.integers(2**31)))
    for k, tar in enumerate(TRUE_TAR):
        neg = (np.sqrt(0.2) * probe_fx[k][person[rows]] + np.sqrt(0.2) * gallery_fx[k][cols]
               + np.sqrt(0.6) * rng.normal(0, 1, len(rows)))
        gen = (sps.norm.isf(TAR_FMR) + sps.norm.ppf(tar) + np.sqrt(0.5) * genuine_fx[k][person]
               + np.sqrt(0.5) * rng.normal(0, 1, len(person)))
        kept = kept_impostors(neg, impostor, TAR_FMR)
        s = Series("identity", "tar_at_fmr", "clean", "fmr=0.01", "", "all", np.arange(len(person)), subjects,
                   "share_at_rate", values=gen, gallery=np.arange(n).astype(str), negatives=kept["negatives"],
                   negative_pairs=kept["negative_pairs"], rate=TAR_FMR, complement=miss)
        series.append(boot.at_fixed_threshold(s) if fixed else s)
    if group:
        on = (np.arange(n) % 2 == 0)[person]  # persons are exchangeable: every second one is a random half
        series = [replace(s, metric="group_fnmr", attribute="g", group="g1", rows=s.rows[on], subjects=subjects[on],
                          values=s.values[on], impostor_subjects=subjects) for s in series]
    (a, ab), (b, bb) = stats = [boot.stat(s) for s in series]
    if group:
        persons = len(np.unique(series[0].subjects))
        _, lo, hi = _pair_interval(series[0], persons, None)(*stats)
    else:
        lo, hi = _interval(b - a, bb - ab, n)
    return Estimate(b - a, lo, hi, len(subjects)), (TRUE_TAR[0] - TRUE_TAR[1]) if miss else (TRUE_TAR[1] - TRUE_TAR[0])


GAIN_FOLDS, GAIN_REPEATS = 5, 2


def sim_paired_gain(rng, n: int, n_boot: int, widened: bool = True) -> tuple[Estimate, float]:
    """Two models whose embeddings carry one binary attribute equally strongly (a person effect, the attribute along
    one axis, and each model's own noise per image; 4 images a person): the true difference of their leakage gains is
    0. A logistic attacker is fitted per model in person-grouped folds (5 x 2 repeats, as the quick preset), as the
    leakage probe fits one; the paired bootstrap holds its out-of-fold predictions fixed, and ``widened`` adds the
    attacker-fit variance (:func:`audit.compare.paired.fit_widened`)."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    from audit.compare.paired import fit_widened

    person = np.repeat(np.arange(n), 4)
    y = rng.integers(0, 2, n)[person]
    identity = rng.normal(0, 1, (n, 16))[person]
    preds = []
    for _ in range(2):
        emb = identity + 0.35 * (2 * y[:, None] - 1) * np.eye(16)[0] + rng.normal(0, 1, (len(y), 16))
        per_repeat = []
        for _ in range(GAIN_REPEATS):
            fold = (rng.permutation(n) % GAIN_FOLDS)[person]
            oof = np.zeros(len(y), int)
            for f in range(GAIN_FOLDS):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    oof[fold == f] = LogisticRegression(max_iter=200).fit(emb[fold != f], y[fold != f]).predict(
                        emb[fold == f])
            per_repeat.append(oof)
        preds.append(np.array(per_repeat))
    subjects = person.astype(str)
    boot = PairedBootstrap(subjects, n_boot, int(rng.integers(2**31)))
    (a, ab), (b, bb) = (boot.stat(Series("leakage", "normalised_gain", "clean", "train=same", "sex", "all",
                                         np.arange(len(y)), subjects, "gain", y=y, pred=p, k=2, folds=GAIN_FOLDS))
                        for p in preds)
    lo, hi = _interval(b - a, bb - ab, n)
    if widened:
        lo, hi = fit_widened(b - a, lo, hi, bb - ab, ab, bb, GAIN_FOLDS)
    return Estimate(b - a, lo, hi, len(subjects)), 0.0


MEMBERSHIP_SHIFT, MEMBERSHIP_FPR = 0.6, 0.1


def sim_paired_membership(rng, n: int, n_boot: int, tpr: bool = True, fixed: bool = False) -> tuple[Estimate, float]:
    """Two models with equally strong membership signal: each person's membership score is a person effect shared
    by the models (correlation 0.7) plus each model's own noise, members shifted by 0.6; ``n`` members and 1.5 ``n``
    non-members. Each model's attack is cross-validated as the membership probe does (stratified person folds, 5 x 2
    repeats, shared by the models as the probe's seeded folds are), thresholds at FPR 0.1 chosen on each fold's
    training non-members; the paired bootstrap reads the ``folds`` series the probe keeps (no fold fitted a model:
    no attacker-fit variance added). The truth is 0 (TPR at FPR 0.1, or with ``tpr`` False the AUC). With ``fixed`` the flags are
    held fixed (``share``, as comparisons did before 0.5.0)."""
    from dataclasses import replace

    from sklearn.model_selection import StratifiedKFold

    from audit.compare.paired import _pair_interval

    y = np.r_[np.ones(n, int), np.zeros(n + n // 2, int)]
    subjects = np.arange(len(y)).astype(str)
    effects = _shared(rng, len(y))
    seeds = rng.integers(2**31, size=GAIN_REPEATS)
    splits = [list(StratifiedKFold(GAIN_FOLDS, shuffle=True, random_state=int(sd)).split(y, y)) for sd in seeds]
    series = []
    for k in range(2):
        score = np.sqrt(0.5) * effects[k] + np.sqrt(0.5) * rng.normal(0, 1, len(y)) + MEMBERSHIP_SHIFT * y
        cv = tuple(tuple((tr, score[tr], te, score[te]) for tr, te in folds) for folds in splits)
        s = Series("membership", "membership_tpr_at_fpr" if tpr else "membership_auc", "clean", "strongest", "",
                   "all", np.arange(len(y)), subjects, "folds", y=y, cv=cv, rate=MEMBERSHIP_FPR if tpr else 0.0,
                   folds=GAIN_FOLDS, fitted=0.0, chosen=False)  # one score attack: fits nothing but thresholds
        if fixed:
            units = np.tile(np.flatnonzero(y == 1), len(cv))
            values = np.concatenate([_flags(rep, y, MEMBERSHIP_FPR)[y == 1] for rep in cv])
            s = replace(s, kind="share", rows=units, subjects=subjects[units], values=values, cv=())
        series.append(s)
    boot = PairedBootstrap(subjects, n_boot, int(rng.integers(2**31)))
    stats = [boot.stat(s) for s in series]
    persons = n if tpr else len(y)  # as compare_runs counts them: a TPR rests on the members, the AUC on everyone
    d, lo, hi = _pair_interval(series[0], persons, None)(*stats, tuple(s.fitted for s in series))
    return Estimate(d, lo, hi, len(y)), 0.0


MEMBERSHIP_SCORES = np.array([0.45, 0.35, 0.2])
"""Shift of members on each of the three scores of :func:`sim_paired_membership_learned`: split so that some folds
choose the learned attacker over the scores (it combines them), others a score."""


def sim_paired_membership_learned(rng, n: int, n_boot: int, tpr: bool = True) -> tuple[Estimate, float]:
    """Two models with equally strong membership signal spread over three scores (each a person effect shared by the
    models, correlation 0.7, plus each model's own noise; members shifted by :data:`MEMBERSHIP_SCORES`), ``n``
    members and 1.5 ``n`` non-members, each model's attacks cross-validated by the membership probe's own
    ``_cross_validate`` (the three scores and the logistic attacker over them, 5 folds x 2 repeats seeded alike for
    both models, as the probe's are): its strongest attack chose the learned attacker in some folds, a score in
    others, and the paired interval adds each model's fit variance in the share of its folds that chose the learned
    attacker (``fitted``, as the probe keeps it). The truth is 0 (TPR at FPR 0.1, or with ``tpr`` False the AUC)."""
    from audit.compare.paired import _pair_interval
    from audit.probes.membership import SCORES, MembershipProbe, learned_share

    probe = MembershipProbe()
    y = np.r_[np.ones(n, int), np.zeros(n + n // 2, int)]
    subjects = np.arange(len(y)).astype(str)
    common = rng.normal(0, 1, (len(y), len(SCORES)))
    seeds = rng.integers(2**31, size=(GAIN_REPEATS, 2))
    rate = MEMBERSHIP_FPR if tpr else None
    series = []
    for _ in range(2):
        x = (np.sqrt(0.5) * (SHARED * common + np.sqrt(1 - SHARED ** 2) * rng.normal(0, 1, common.shape))
             + np.sqrt(0.5) * rng.normal(0, 1, common.shape) + y[:, None] * MEMBERSHIP_SCORES)
        feats = {s: x[:, i] for i, s in enumerate(SCORES)}
        strongest = [probe._cross_validate(feats, x, y, probe._folds(y, GAIN_FOLDS, int(a)), int(b))["strongest"]
                     for a, b in seeds]
        cv = tuple(tuple(r["folds"] if rate is None else r["folds_at"][rate]) for r in strongest)
        series.append(Series("membership", "membership_tpr_at_fpr" if tpr else "membership_auc", "clean", "strongest",
                             "", "all", np.arange(len(y)), subjects, "folds", y=y, cv=cv,
                             rate=rate if tpr else 0.0, folds=GAIN_FOLDS, fitted=learned_share(strongest, rate)))
    boot = PairedBootstrap(subjects, n_boot, int(rng.integers(2**31)))
    stats = [boot.stat(s) for s in series]
    persons = n if tpr else len(y)
    d, lo, hi = _pair_interval(series[0], persons, None)(*stats, tuple(s.fitted for s in series))
    return Estimate(d, lo, hi, len(y)), 0.0


def _flags(folds, y: np.ndarray, fpr: float) -> np.ndarray:
    """Each person's flag at the threshold their test fold's training non-members put at ``fpr``."""
    from audit.metrics.verification import threshold_at_fmr

    flag = np.zeros(len(y), bool)
    for tr, s_tr, te, s_te in folds:
        flag[te] = s_te >= threshold_at_fmr(s_tr[y[tr] == 0], fpr)
    return flag


SIMULATORS = {"fnmr": (sim_paired_fnmr, "fnmr difference B - A (paired)"),
              "gain": (sim_paired_gain, "normalised_gain difference B - A (paired, attacker fit variance added)"),
              "gain_unwidened": (lambda rng, n, n_boot: sim_paired_gain(rng, n, n_boot, widened=False),
                                 "normalised_gain difference B - A (paired, predictions held fixed)"),
              "fmr": (sim_paired_fmr, "group fmr difference B - A (paired, two-way)"),
              "tar": (sim_paired_tar, "tar_at_fmr difference B - A (paired, own thresholds)"),
              "tar_fixed": (lambda rng, n, n_boot: sim_paired_tar(rng, n, n_boot, fixed=True),
                            "tar_at_fmr difference B - A (paired, thresholds held fixed)"),
              "fnmr_threshold": (lambda rng, n, n_boot: sim_paired_tar(rng, n, n_boot, miss=True),
                                 "fnmr difference B - A (paired, thresholds estimated, chosen again)"),
              "fnmr_fixed": (lambda rng, n, n_boot: sim_paired_tar(rng, n, n_boot, fixed=True, miss=True),
                             "fnmr difference B - A (paired, estimated thresholds held fixed)"),
              "group_fnmr": (lambda rng, n, n_boot: sim_paired_tar(rng, n, n_boot, miss=True, group=True),
                             "group fnmr difference B - A (paired, half the persons, the whole run's threshold "
                             "chosen again)"),
              "membership_tpr": (sim_paired_membership, "membership TPR at FPR 0.1 difference B - A (paired, "
                                 "thresholds chosen again; a score attack, no fit variance)"),
              "membership_tpr_fixed": (lambda rng, n, n_boot: sim_paired_membership(rng, n, n_boot, fixed=True),
                                       "membership TPR at FPR 0.1 difference B - A (paired, flags held fixed)"),
              "membership_auc": (lambda rng, n, n_boot: sim_paired_membership(rng, n, n_boot, tpr=False),
                                 "membership AUC difference B - A (paired, per-fold pairs; a score attack, no fit "
                                 "variance)"),
              "membership_tpr_learned": (sim_paired_membership_learned, "membership TPR at FPR 0.1 difference B - A "
                                         "(paired, the probe's own attacks, some folds fitted)"),
              "membership_auc_learned": (lambda rng, n, n_boot: sim_paired_membership_learned(rng, n, n_boot,
                                                                                              tpr=False),
                                         "membership AUC difference B - A (paired, the probe's own attacks, some "
                                         "folds fitted)")}


def coverage(n: int, reps: int, n_boot: int = 200, seed: int = 0, metric: str = "fnmr") -> dict:
    """Share of simulated datasets whose paired interval of B - A holds the true difference."""
    rng = np.random.default_rng([seed, n, 7])
    sim, label = SIMULATORS[metric]
    (row,) = tally({label: sim(rng, n, n_boot)} for _ in range(reps)).values()
    return {"simulator": "paired", "metric": label, "persons": n, "n_boot": n_boot, **row}
