"""Known-truth problems for checking that nominal 95% intervals cover the truth.

Each simulator draws one dataset of ``n`` persons from a population whose true value is known,
computes the statistic and its interval exactly as the probes do (the identity simulation calls the
identity probe's own verification and demographic code), and says whether the interval holds the
truth. :func:`coverage` repeats that; ``benchmarks/coverage.py`` prints the table and
``tests/probes/test_coverage.py`` asserts it. Persons differ (person-level random effects), which is
what makes image-level intervals too narrow. This module sits above the probes because it runs them.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
from scipy import stats as sps

from audit.data.split import subject_folds
from audit.metrics import verification as ver
from audit.metrics.settings import operating_point, supported_form
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
SIDES_CORR = 0.8
"""Correlation of a person's effect on impostor scores as a probe and as a gallery entry: a face that sits near many
others does so on both sides (0.70-0.90 on the sample models' clean embeddings, a review of the statistics). The
simulators drew the two independently until 0.11.0, so they could not see that a gallery side drawn apart from the
probe side left the covariance out of every FMR interval (coverage 0.88 for 0.95 at 200 persons)."""


def gallery_side(probe: np.ndarray, other: np.ndarray) -> np.ndarray:
    """A person's effect as a gallery entry, from their effect as a probe and an independent draw of the same
    variance: correlated :data:`SIDES_CORR` with the first, of the same variance."""
    return SIDES_CORR * probe + np.sqrt(1 - SIDES_CORR ** 2) * other


def _both_sides(rng, n: int, sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Each person's effect as a probe and as a gallery entry, each N(0, sd^2), correlated :data:`SIDES_CORR`."""
    probe = rng.normal(0, sd, n)
    return probe, gallery_side(probe, rng.normal(0, sd, n))


def sim_fmr(rng, n: int, n_boot: int, person_sd: float = 0.45) -> tuple[Estimate, float]:
    """Impostor scores = probe-person effect + gallery-person effect (the same persons, correlated :data:`SIDES_CORR`)
    + noise (total variance 1); true FMR 0.01 at a fixed threshold. Every person has one gallery image and several
    probes, as in the identity probe."""
    noise_sd = np.sqrt(1 - 2 * person_sd ** 2)
    m = _images_per_person(rng, n)
    subjects = np.repeat(np.arange(n), m)
    a, g = _both_sides(rng, n, person_sd)
    a = a[subjects]
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
    """The estimand of the leakage intervals: the expected accuracy, on new persons, of the attacker trained on
    (folds-1)/folds of ``n`` persons (the classes are balanced, so it is also the balanced accuracy)."""
    rng = np.random.default_rng(seed)
    xt, yt, _ = _leak_draw(rng, 20000)
    accs = []
    for _ in range(reps):
        x, y, _ = _leak_draw(rng, int(round(n * (folds - 1) / folds)))
        accs.append(float((_attacker().fit(x, y).predict(xt) == yt).mean()))
    return float(np.mean(accs))


def sim_leak(rng, n: int, n_boot: int, folds: int = 5, repeats: int = 2) -> dict[str, tuple[Estimate, float]]:
    """Attacker accuracy, balanced accuracy and normalised gain by repeated grouped cross-validation (the quick
    preset's 5 folds x 2 repeats), with the intervals the leakage probe's own code gives them."""
    from audit.probes.leakage import LeakageProbe

    x, y, subjects = _leak_draw(rng, n)
    seed = int(rng.integers(2**31))
    preds = []
    for r in range(repeats):
        oof = np.zeros(len(y))
        for tr, te in subject_folds(subjects, folds, seed + r, strata=y):
            oof[te] = _attacker().fit(x[tr], y[tr]).predict(x[te])
        preds.append(oof)
    boot = SubjectBootstrap(subjects, n_boot, seed, "leak")
    keep = np.ones(len(y), dtype=bool)
    resampled = LeakageProbe._categorical_boots(preds, y, keep, boot, 2)
    recs = LeakageProbe()._records("clean", "train=same", "x", resampled, boot, False, folds)
    truth = leak_truth(n, folds)
    truths = {"accuracy": truth, "balanced_accuracy": truth, "normalised_gain": 2 * truth - 1}
    return {f"leakage_{r.metric}": (Estimate(r.value, r.ci_low, r.ci_high, r.n), truths[r.metric]) for r in recs
            if r.metric in truths}


# Identity scores (variance 1 each side): genuine = MU_G + person effect + noise with intra-class correlation
# ID_ICC; impostor = probe-person + gallery-person + person-pair effects + noise. At the fixed threshold ID_TAU the
# true FMR is 0.01 and the true FNMR 0.05; EER and AUC follow from the two normal score distributions.
ID_ICC = 0.5
ID_IMPOSTOR_SD = {"probe": 0.35, "gallery": 0.35, "pair": 0.3}
ID_TAU = float(sps.norm.ppf(0.99))
ID_MU_G = ID_TAU + float(sps.norm.ppf(0.95))
ID_TRUTH = {"fnmr": 0.05, "fnmr_estimated_threshold": 0.05, "fmr": 0.01, "tar_at_fmr": 0.95, "eer": float(sps.norm.sf(ID_MU_G / 2)),
            "roc_auc": float(sps.norm.cdf(ID_MU_G / np.sqrt(2))), "group_fnmr": 0.05, "group_fmr": 0.01}


def identity_draw(rng, n: int, small_group: int = 0):
    """One identity dataset of ``n`` persons (2 + Poisson(1) images each; the first is the gallery image):
    ``(subjects of the probe rows, scores probes x gallery, genuine scores, own gallery column, group labels)``.
    With ``small_group`` = k, the first k persons form group ``small`` and the others alternate ``a`` / ``b``."""
    m = 2 + rng.poisson(1.0, n)
    own = np.repeat(np.arange(n), m - 1)  # probe rows: every image but the first of each person
    gen = ID_MU_G + rng.normal(0, np.sqrt(ID_ICC), n)[own] + rng.normal(0, np.sqrt(1 - ID_ICC), len(own))
    sd = ID_IMPOSTOR_SD
    noise_sd = np.sqrt(1 - sum(v ** 2 for v in sd.values()))
    b, c = _both_sides(rng, n, sd["probe"])  # one person on both sides (sd["gallery"] is the same)
    pair = rng.normal(0, sd["pair"], (n, n))
    pair = (pair + pair.T) / np.sqrt(2)  # A ~ B as B ~ A
    s = b[own][:, None] + c[None, :] + pair[own] + rng.normal(0, noise_sd, (len(own), n))
    s[np.arange(len(own)), own] = gen
    labels = np.where(np.arange(n) % 2 == 0, "a", "b").astype(object)
    labels[:small_group] = "small"
    return own, s, gen, own, labels


def sim_identity(rng, n: int, n_boot: int, small_group: int = 0,
                 estimated_threshold: bool = False) -> dict[str, tuple[Estimate, float]]:
    """Every identity interval the rules read, computed by the identity probe's own code on one simulated
    dataset: FNMR, FMR, TAR at FMR 0.01, EER and ROC AUC, and (with a grouping) every group's FNMR and FMR,
    keyed ``group_fnmr:small`` etc. With ``estimated_threshold`` only the group rates, at the threshold the
    sample's impostor scores give for FMR 0.01 (as a run measures them; the probe holds it fixed on every
    resample) against their values at the population's threshold."""
    from audit.probes.identity import IdentityProbe, _person_pairs

    subjects, s, gen, own, labels = identity_draw(rng, n, small_group)
    boot = SubjectBootstrap(subjects, n_boot, int(rng.integers(2**31)), "identity")
    imp_mask = np.ones_like(s, dtype=bool)
    imp_mask[np.arange(len(own)), own] = False
    pairs = _person_pairs(boot, own, n)
    probe = IdentityProbe()
    taus, label = {0.01: ID_TAU}, {0.01: "fmr=0.01"}
    groups = {"grp": (labels[own], labels)}
    # the threshold the clean impostor scores give for FMR 0.01, as a run measures it (the true one, ID_TAU, is known
    # here and never in a run)
    estimated = ver.threshold_at_fmr(s[imp_mask], 0.01)
    if estimated_threshold:
        recs = probe._demographics("clean", s, gen, imp_mask, pairs, groups, estimated, label[0.01], boot)
    else:
        recs = probe._verification("clean", s, gen, imp_mask, pairs, pairs.sum(imp_mask), own, taus, label, boot,
                                   np.random.default_rng(int(rng.integers(2**31))))
        # FNMR as the probe measures it: at the estimated threshold, chosen again on every resample
        recs += [replace(r, metric="fnmr_estimated_threshold") for r in probe._verification(
            "clean", s, gen, imp_mask, pairs, pairs.sum(imp_mask), own, {0.01: estimated}, label, boot,
            np.random.default_rng(0), clean_imp=s[imp_mask]) if r.metric == "fnmr"]
        recs += probe._demographics("clean", s, gen, imp_mask, pairs, groups, ID_TAU, label[0.01], boot)
    out = {}
    for r in recs:
        key = r.metric if r.group == "all" else f"{r.metric}:{r.group}"
        truth = ID_TRUTH.get(r.metric)
        if truth is not None:
            out[key] = (Estimate(r.value, r.ci_low, r.ci_high, r.n), truth)
    return out


# Membership: per-person attack scores (tightness, spread, isolation) = signal for members + person effect +
# noise that shrinks with the person's images (2 + Poisson(2)); tightness and spread correlated (0.6).
MEMB_SIGNAL = np.array([0.45, 0.4, 0.25])
MEMB_FOLDS, MEMB_REPEATS = 5, 2
MEMB_METRICS = ("membership_auc", "membership_balanced_accuracy", "membership_tpr_at_fpr")
MEMB_ATTACKS = ("strongest", "tightness", "learned")


def _memb_draw(rng, n_mem: int, n_non: int) -> tuple[dict, np.ndarray, np.ndarray]:
    from audit.probes.membership import SCORES

    y = np.r_[np.ones(n_mem, int), np.zeros(n_non, int)]
    z = rng.normal(0, 1, (len(y), 3))
    z[:, 1] = 0.6 * z[:, 0] + 0.8 * z[:, 1]
    images = 2 + rng.poisson(2.0, len(y))
    x = y[:, None] * MEMB_SIGNAL + 0.8 * z + rng.normal(0, 0.6, (len(y), 3)) / np.sqrt(images - 1)[:, None]
    return {s: x[:, i] for i, s in enumerate(SCORES)}, x, y


def _memb_outcomes(out: dict, y: np.ndarray, at: np.ndarray) -> dict:
    """AUC, balanced accuracy and TPR at FPR 0.1 (and 0.01: ``membership_tpr_at_fpr@0.01``) of one attack's
    cross-validated outcomes on persons ``at``."""
    from audit.probes.membership import _auc

    mem, non = at & (y == 1), at & (y == 0)
    # a score attack's AUC from its score on those persons; a fitted one's is its folds' (here one fold: ``at``)
    return {"membership_auc": _auc(out["ranked"][at], y[at]) if "ranked" in out else out["auc"],
            "membership_balanced_accuracy": 0.5 * (out["bacc"][mem].mean() + (~out["bacc"][non]).mean()),
            "membership_tpr_at_fpr": out["flag"][0.1][mem].mean(),
            "membership_tpr_at_fpr@0.01": out["flag"][0.01][mem].mean()}


@lru_cache(maxsize=8)
def membership_truth(n_mem: int, n_non: int, reps: int = 100, test: int = 20000, seed: int = 54321) -> dict:
    """The estimand of the membership intervals, per (attack, metric): the expected AUC, balanced accuracy and TPR
    at FPR 0.1 on new persons from the same population of each attack as the probe builds it from (k-1)/k of the
    persons (thresholds, the learned attacker and the strongest attack's choice all made on them). Computed by the
    probe's own ``_cross_validate`` with one fold whose held-out side is ``test`` + ``test`` new persons."""
    from audit.probes.membership import MembershipProbe

    probe, rng = MembershipProbe(), np.random.default_rng(seed)
    f = (MEMB_FOLDS - 1) / MEMB_FOLDS
    n_tr_mem, n_tr_non = int(round(n_mem * f)), int(round(n_non * f))
    sums: dict = {}
    for r in range(reps):
        feats_tr, x_tr, y_tr = _memb_draw(rng, n_tr_mem, n_tr_non)
        feats_te, x_te, y_te = _memb_draw(rng, test, test)
        feats = {a: np.r_[feats_tr[a], feats_te[a]] for a in feats_tr}
        y = np.r_[y_tr, y_te]
        tr, te = np.arange(len(y_tr)), np.arange(len(y_tr), len(y))
        out = probe._cross_validate(feats, np.r_[x_tr, x_te], y, [(tr, te)], int(rng.integers(2**31)))
        at = np.zeros(len(y), bool)
        at[te] = True
        for a in MEMB_ATTACKS:
            for metric, v in _memb_outcomes(out[a], y, at).items():
                sums[(a, metric)] = sums.get((a, metric), 0.0) + v / reps
    return sums


def sim_membership(rng, n: int, n_boot: int, non_members: int | None = None,
                   fpr: float = 0.1) -> dict[str, tuple[Estimate, float]]:
    """The membership probe's AUC, balanced accuracy and TPR at FPR 0.1 of the strongest attack, a score attack
    (tightness: no fitting) and the learned one, by its own cross-validation (5 stratified folds x 2 repeats)
    and interval code, on ``n`` members and ``non_members`` (default ``n``) non-members; with ``fpr`` 0.01 the
    TPR at FPR 0.01 only (what the rules read; it needs 3,000 non-members to be supported)."""
    from audit.probes.membership import MembershipProbe

    n_non = n if non_members is None else non_members
    probe = MembershipProbe()
    feats, x, y = _memb_draw(rng, n, n_non)
    seed = int(rng.integers(2**31))
    outs = [probe._cross_validate(feats, x, y, probe._folds(y, MEMB_FOLDS, seed + r), seed + 100 + r)
            for r in range(MEMB_REPEATS)]
    boot = SubjectBootstrap(np.arange(len(y)), n_boot, seed, "membership")
    truth = membership_truth(n, n_non)
    got = {}
    for a in MEMB_ATTACKS:
        for rec in probe._records(a, [o[a] for o in outs], y, boot, MEMB_FOLDS):
            setting = supported_form(rec.setting)
            if fpr == 0.1 and rec.metric in MEMB_METRICS and setting in (a, operating_point("fpr", 0.1, attack=a)):
                name = rec.metric
            elif rec.metric == "membership_tpr_at_fpr" and setting == operating_point("fpr", fpr, attack=a):
                name = f"{rec.metric}@{fpr:g}"
            else:
                continue
            got[f"{name}:{a}"] = (Estimate(rec.value, rec.ci_low, rec.ci_high, rec.n), truth[(a, name)])
    return got


# Inversion: each person a direction in INV_DIM dimensions; an image's embedding is it plus noise; a
# reconstruction is its image's embedding plus noise whose size varies by person (some faces rebuild well, some
# do not). SAR type I at the victims' FMR 1e-2 threshold, with the inversion probe's own calibration and interval.
INV_DIM, INV_IMAGE_SD, INV_FMR = 12, 0.35, 0.01


def _inv_draw(rng, n: int):
    m = 1 + rng.poisson(1.0, n)
    subjects = np.repeat(np.arange(n), m)
    images = rng.normal(0, 1, (n, INV_DIM))[subjects] + rng.normal(0, INV_IMAGE_SD * np.sqrt(INV_DIM), (len(subjects),
                                                                                                       INV_DIM))
    quality = np.exp(rng.normal(np.log(1.3), 0.35, n))[subjects]  # each person's reconstruction noise scale
    recon = images + quality[:, None] * rng.normal(0, 1, images.shape)
    return subjects, images, recon


@lru_cache(maxsize=2)
def inversion_truth(persons: int = 20000, pairs: int = 2_000_000, seed: int = 777) -> float:
    """The estimand: the share of victims' images whose reconstruction is accepted at the threshold that puts the
    FMR of comparisons between two images of different persons at 1e-2, in the population."""
    rng = np.random.default_rng(seed)
    subjects, images, recon = _inv_draw(rng, persons)
    unit = ver.l2_normalise(images)
    i, j = rng.integers(0, len(subjects), (2, pairs))
    keep = subjects[i] != subjects[j]
    tau = np.quantile(np.einsum("ij,ij->i", unit[i[keep]], unit[j[keep]]), 1 - INV_FMR)
    return float(np.mean(np.einsum("ij,ij->i", ver.l2_normalise(recon), unit) >= tau))


def sim_inversion(rng, n: int, n_boot: int) -> dict[str, tuple[Estimate, float]]:
    """SAR type I by the inversion probe's own ``calibrate`` and ``_metrics`` (the threshold chosen again on every
    resample), and, for comparison, the interval with the threshold held at the whole sample's value."""
    from audit.probes.inversion import InversionProbe

    subjects, images, recon = _inv_draw(rng, n)
    cal = InversionProbe.calibrate(images, subjects)
    boot = SubjectBootstrap(subjects, n_boot, int(rng.integers(2**31)), "inversion")
    recs = InversionProbe()._metrics("black-box;target", "clean", recon, images, subjects, cal, boot, boot,
                                     np.arange(len(subjects)))
    (sar,) = [r for r in recs if r.metric == "sar_type1" and supported_form(r.setting).endswith(f"fmr={INV_FMR:g}")]
    own = np.einsum("ij,ij->i", ver.l2_normalise(recon), ver.l2_normalise(images))
    truth = inversion_truth()
    return {"sar_type1": (Estimate(sar.value, sar.ci_low, sar.ci_high, sar.n), truth),
            "sar_type1, threshold held fixed": (boot.mean(own >= cal.taus[INV_FMR], rate=True), truth)}


SIMULATORS = {
    "fnmr": lambda rng, n, b: sim_share(rng, n, b, 0.05),
    "fmr": sim_fmr,
    "leakage": sim_leak,
    "psr": lambda rng, n, b: sim_share(rng, n, b, 0.9),
    "identity": sim_identity,
    "identity_small_group": lambda rng, n, b: sim_identity(rng, n, b, small_group=5),
    "membership": sim_membership,
    "membership_low_fpr": lambda rng, n, b: sim_membership(rng, n, b, non_members=10 * n, fpr=0.01),
    "inversion": sim_inversion,
    "identity_estimated_threshold": lambda rng, n, b: sim_identity(rng, n, b, small_group=5, estimated_threshold=True),
}
SEED_ORDER = ("fmr", "fnmr", "identity", "identity_small_group", "leakage", "psr", "membership", "membership_low_fpr",
              "inversion", "identity_estimated_threshold")
"""Each simulator's place in its random stream's key (new simulators go last, so older tables reproduce)."""


def tally(draws) -> dict[str, dict]:
    """Per interval name, over ``draws`` (one ``{name: (Estimate, truth)}`` per simulated dataset): how many
    datasets, the truth, the share whose interval held it (``coverage``), lay above it (``truth_below_interval``)
    and excluded 0 from below (``told_apart``: for differences), the mean width and the estimates' own spread."""
    seen: dict[str, dict] = {}
    for got in draws:
        for name, (est, truth) in got.items():
            t = seen.setdefault(name, {"hits": 0, "below": 0, "above_zero": 0, "widths": [], "values": [],
                                       "truth": truth})
            t["hits"] += est.ci_low <= truth <= est.ci_high
            t["below"] += truth < est.ci_low
            t["above_zero"] += est.ci_low > 0
            t["widths"].append(est.ci_high - est.ci_low)
            t["values"].append(est.value)
    return {name: {"reps": len(t["values"]), "truth": t["truth"], "coverage": t["hits"] / len(t["values"]),
                   "truth_below_interval": t["below"] / len(t["values"]), "told_apart": t["above_zero"] / len(t["values"]),
                   "mean_width": float(np.mean(t["widths"])),
                   # the estimates' own spread over datasets: a 95% interval of a normal estimate is about 3.92 sd wide
                   "estimate_sd": float(np.std(t["values"], ddof=1)) if len(t["values"]) > 1 else float("nan")}
            for name, t in seen.items()}


def coverage(simulator: str, n: int, reps: int, n_boot: int = 200, seed: int = 0) -> list[dict]:
    """Empirical coverage of nominal 95% intervals at ``n`` persons over ``reps`` datasets: one row per
    interval the simulator returns (a single-metric simulator returns one)."""
    rng = np.random.default_rng([seed, n, SEED_ORDER.index(simulator)])

    def draws():
        for _ in range(reps):
            got = SIMULATORS[simulator](rng, n, n_boot)
            yield got if isinstance(got, dict) else {simulator: got}

    rows = []
    for metric, t in tally(draws()).items():
        t.pop("told_apart")
        rows.append({"simulator": simulator, "metric": metric, "persons": n, "n_boot": n_boot, **t})
    return rows
