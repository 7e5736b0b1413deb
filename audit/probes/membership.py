"""Membership probe: was this person's face used to train the model?

The unit is the person: each person of the dataset carries a ``member`` label (1 = believed to be in
the model's training data, 0 = surely not, e.g. photographed after the model's release; empty =
unknown, left out). From the model's clean embeddings every person gets a few scores, each oriented
so that a higher score means "more likely a member":

* ``tightness`` - mean cosine similarity between the person's own images (a model pulls the images of
  the people it was trained on together);
* ``spread`` - minus the mean (Euclidean) distance between two of the person's images (the same idea, less
  sensitive to one odd photo; every pair of images is alike whatever the number of photos, where a distance from
  the person's own centroid shrinks with fewer photos and told persons apart by their number of photos);
* ``isolation`` - one minus the cosine similarity of the person's centroid to the nearest other
  person's centroid (margin losses push training identities apart, so members sit farther from
  everyone else);
* with ``--reference-model`` (repeatable; models the auditor is sure never saw these persons): each score
  calibrated per person against the references, LiRA-style: the target's score, standardised over the
  persons, minus the references' mean standardised score (divided by the references' spread for that
  person when there are two or more), so a person who is naturally tight or isolated under any model
  no longer looks like a member (``<score>@reference``);
* ``learned`` - logistic regression over every score above (its C by inner cross-validation).

Attacks are judged on stratified person folds repeated with different seeds: in each fold the
decision thresholds (for a target false-positive rate, and for the best balanced accuracy) are chosen
on the *other* folds' persons, and ``strongest`` uses the attack that did best on the other folds - by AUC for
its AUC and balanced accuracy, and at each false-positive target by the members it flagged there (its
``strongest;fpr=...`` rows: attacks rank differently at a low false-positive rate than by AUC) - so no reported
figure is chosen on the persons it is measured on. Reported per attack: AUC, balanced
accuracy, the true-positive rate (members flagged) at a false-positive rate (non-members flagged) of
1e-1, 1e-2 and 1e-3, and the false-positive rate actually reached on held-out non-members. A target
the non-member count cannot support (fewer than 30 expected false positives) is still measured, with
``;unsupported`` in its setting and the non-member persons it needs stored beside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from audit.data.manifest import MEMBER
from audit.errors import ConfigError
from audit.metrics.settings import operating_point
from audit.metrics.stats import Estimate, SubjectBootstrap, auc_trials, floor_rate, widen_for_training
from audit.metrics.verification import RULE_OF_30, eer_auc_many, l2_normalise, threshold_at_fmr
from audit.probes.base import Artifact, MetricRecord, ProbeContext, ProbeResult, outcomes_artifact, register
from audit.seeding import derive_seed

RISK, NEUTRAL = "higher_is_riskier", "neutral"
FPR_TARGETS = (1e-1, 1e-2, 1e-3)
SCORES = ("tightness", "spread", "isolation")
MIN_FALSE_POSITIVES = RULE_OF_30
"""Expected false positives (non-member persons times the target rate) a false-positive target needs to be
supported (the rule of 30 the identity probe applies to false matches)."""
MIN_PER_CLASS = 10
"""Fewest member and non-member persons the probe runs with (each fold needs both)."""
FITTED = ("learned", "strongest")
"""Attacks fitted on other folds' persons beyond a threshold (the logistic attacker; the choice of the strongest):
their intervals are widened for the fit's own variability (:func:`audit.metrics.stats.widen_for_training`)."""
TIE = 1e-9  # balanced accuracies closer than this are one (two ways of summing the same counts round apart)


def person_scores(emb: np.ndarray, subjects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(persons, scores): each person with two or more images, and their :data:`SCORES` as columns
    (higher = more member-like), from L2-normalised embeddings."""
    e = l2_normalise(np.asarray(emb, np.float64))
    persons, inverse, counts = np.unique(subjects, return_inverse=True, return_counts=True)
    sums = np.zeros((len(persons), e.shape[1]))
    np.add.at(sums, inverse, e)
    sq = (sums ** 2).sum(1)  # |sum|^2 = n + sum over ordered pairs of cosine similarities
    with np.errstate(invalid="ignore", divide="ignore"):
        tightness = (sq - counts) / (counts * (counts - 1))
    centroid = sums / counts[:, None]
    # Mean distance over the person's pairs of images: its expectation does not depend on how many photos a person
    # has (the distance from their own centroid, which each photo pulls towards itself, does: with no membership
    # signal at all, 2 photos a member against 10 a non-member gave it an AUC of 1.0; a review of the probe).
    spread = np.full(len(persons), np.nan)
    order = np.argsort(inverse, kind="stable")
    for p, rows in enumerate(np.split(order, np.cumsum(counts)[:-1])):
        if len(rows) >= 2:
            sim = e[rows] @ e[rows].T
            spread[p] = np.sqrt(np.maximum(2 - 2 * sim[np.triu_indices(len(rows), 1)], 0)).mean()
    unit = centroid / np.maximum(np.linalg.norm(centroid, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    nearest = sim.max(1) if len(persons) > 1 else np.zeros(len(persons))
    keep = counts >= 2
    return persons[keep], np.stack([tightness, -spread, 1 - nearest], 1)[keep]


def calibrate(target: np.ndarray, references: list[np.ndarray]) -> np.ndarray:
    """Per-person calibration against reference models (columns: scores): the target's score standardised
    over persons minus the references' mean standardised score, divided by the references' per-person
    standard deviation when there are two or more (LiRA's per-example variance, floored), else by 1."""
    def z(a):
        sd = a.std(0)
        return (a - a.mean(0)) / np.where(sd > 0, sd, 1)

    refs = np.stack([z(r) for r in references])
    out = z(target) - refs.mean(0)
    if len(references) >= 2:
        sd = refs.std(0, ddof=1)
        # Floored at the persons' median spread (and 0.1 of the unit scale): two references that agree by
        # chance on one person must not make any small difference look decisive.
        out = out / np.maximum(sd, max(float(np.median(sd)), 0.1))
    return out


def needs_more(n_nonmembers: int, fpr: float) -> int:
    """Non-member persons missing for ``fpr`` to rest on at least 30 expected false positives (0 = enough)."""
    return max(0, int(np.ceil(MIN_FALSE_POSITIVES / fpr - 1e-9)) - n_nonmembers)


def _threshold_bacc(s: np.ndarray, y: np.ndarray) -> float:
    """The threshold (flag when score >= it) with the best balanced accuracy on (``s``, ``y``)."""
    cand = np.unique(s)
    flag = s[None, :] >= cand[:, None]
    tpr = (flag & (y == 1)).sum(1) / max((y == 1).sum(), 1)
    tnr = (~flag & (y == 0)).sum(1) / max((y == 0).sum(), 1)
    gain = tpr + tnr
    return float(cand[int(np.argmax(gain >= gain.max() - TIE))])  # the lowest of the tied best (as rechosen_rate)


def fold_auc(folds: list, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """AUC of the (member, non-member) pairs scored by the same fold's attack, pooled over ``folds`` (each fold's
    pairs weighted as the person weights ``w`` draw them): one value per row of ``w``."""
    num, den = np.zeros(len(w)), np.zeros(len(w))
    for _, _, te, s_te in folds:
        mem, non = y[te] == 1, y[te] == 0
        wm, wn = w[:, te[mem]], w[:, te[non]]
        pairs = wm.sum(1) * wn.sum(1)
        if mem.any() and non.any():
            with np.errstate(invalid="ignore", divide="ignore"):
                area = eer_auc_many(s_te[non], s_te[mem], wn, wm)[3]
            num += np.where(pairs > 0, np.nan_to_num(area), 0) * pairs
            den += pairs
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


C_GRID = [0.01, 0.1, 1.0, 10.0]
"""The learned attacker's inverse regularisation strengths, one chosen (by AUC) by inner stratified 3-fold CV."""


def _logistic(c: float | None = None, seed: int = 0):
    """Logistic regression over the standardised scores: with ``c`` that C, without it the C of :data:`C_GRID` chosen
    (by AUC) by inner stratified 3-fold CV seeded ``seed`` (the grid searched after the scaler, as fitted)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    regression = LogisticRegression(C=1.0 if c is None else c, max_iter=2000)
    if c is None:
        cv = StratifiedKFold(3, shuffle=True, random_state=seed % 2**32)
        regression = GridSearchCV(regression, {"C": C_GRID}, cv=cv, scoring="roc_auc")
    return make_pipeline(StandardScaler(), regression)


@register
class MembershipProbe:
    name = "membership"
    title = "Membership inference"
    needs_embedding = True
    opt_in = True
    """Runs only when named (``--probes membership``): it needs a ``member`` label per person."""

    def conditions(self, config) -> list[str]:
        return ["clean"]

    def check(self, config, dataset, model) -> None:
        if model.profile.kind != "embedding":
            raise ConfigError("membership: needs a face-recognition (embedding) model")
        m = dataset.manifest
        if MEMBER not in m.columns:
            raise ConfigError(f"membership: the dataset {dataset.source} has no '{MEMBER}' column; give one in the "
                              f"manifest or with --labels (1 = in the training data, 0 = surely not, per person)")
        per = m.groupby(m["subject"].astype(str))[MEMBER].nunique(dropna=True)
        mixed = per[per > 1]
        if len(mixed):
            who = mixed.index[0]
            row = int(np.flatnonzero(m["subject"].astype(str).to_numpy() == who)[0]) + 1
            raise ConfigError(f"membership: person {who!r} (first at row {row}) has both {MEMBER} 1 and 0; the "
                              "label is per person")
        labels = m.groupby(m["subject"].astype(str))[MEMBER].first().dropna()
        for value, what in ((1, "member"), (0, "non-member")):
            n = int((labels == value).sum())
            if n < MIN_PER_CLASS:
                raise ConfigError(f"membership: {dataset.source} has {n} {what} persons ({MEMBER} = {value}); "
                                  f"the probe needs at least {MIN_PER_CLASS} of each")

    def run(self, ctx: ProbeContext) -> ProbeResult:
        cfg = ctx.config
        k, repeats = cfg.setting("folds"), cfg.setting("cv_repeats")
        subjects = ctx.subjects.astype(str)
        label_of = pd.Series(ctx.column(MEMBER), index=subjects).groupby(level=0).first()
        persons, raw = person_scores(ctx.embeddings("clean"), subjects)
        y_all = label_of.reindex(persons).to_numpy(float)
        known = ~np.isnan(y_all)
        features = {s: raw[:, i] for i, s in enumerate(SCORES)}
        refs = [self._reference(ctx, m, subjects, persons) for m in ctx.reference_models]
        if refs:
            cal = calibrate(raw, refs)
            features.update({f"{s}@reference": cal[:, i] for i, s in enumerate(SCORES)})
        ctx.progress(0.3, "scores")
        persons, y = persons[known], y_all[known].astype(int)
        features = {a: v[known] for a, v in features.items()}
        x = np.stack(list(features.values()), 1)
        usable = np.all(np.isfinite(x), 1)
        persons, y, x = persons[usable], y[usable], x[usable]
        features = {a: v[usable] for a, v in features.items()}
        n_mem, n_non = int(y.sum()), int((1 - y).sum())
        if min(n_mem, n_non) < max(MIN_PER_CLASS, k):
            raise ConfigError(f"membership: {n_mem} member and {n_non} non-member persons with two or more usable "
                              f"images; the probe needs at least {max(MIN_PER_CLASS, k)} of each")
        attacks = list(features) + ["learned"]
        folds_by_repeat = [self._folds(y, k, derive_seed(ctx.seed, "membership-split", r)) for r in range(repeats)]
        outs = [self._cross_validate(features, x, y, folds, derive_seed(ctx.seed, "membership-learned", r))
                for r, folds in enumerate(folds_by_repeat)]
        ctx.progress(0.7, "attacks")
        boot = SubjectBootstrap(persons, cfg.setting("bootstrap"), ctx.seed, "membership")
        result = ProbeResult()
        for attack in attacks + ["strongest"]:
            result.metrics += self._records(attack, [o[attack] for o in outs], y, boot, k)
        for fpr in FPR_TARGETS:
            need = needs_more(n_non, fpr)
            result.metrics.append(MetricRecord.of(self.name, "clean", "membership_nonmembers_needed",
                                                  Estimate(float(need), float(need), float(need), n_non), NEUTRAL,
                                                  setting=operating_point("fpr", fpr)))
            if need:
                result.notes.append(
                    f"Membership: a false-positive rate of {fpr:g} rests on {fpr * n_non:.1f} expected false "
                    f"positives among {n_non} non-member persons (30 are needed): it needs {need} more non-member "
                    "persons. It is measured anyway, marked 'unsupported', and rules do not pass on it.")
        photos = pd.Series(subjects).value_counts().reindex(persons).to_numpy(float)
        per_class = {"members": float(photos[y == 1].mean()), "nonmembers": float(photos[y == 0].mean())}
        if max(per_class.values()) > 1.2 * min(per_class.values()):
            result.notes.append(
                f"Membership: members have {per_class['members']:.1f} photos on average and non-members "
                f"{per_class['nonmembers']:.1f}. The scores are built so that the number of photos alone does not "
                "move them, but a person's centroid is steadier with more photos (isolation); where the sets were put "
                "together from different sources, compare persons with as many photos each.")
        auc = {a: float(np.mean([o[a]["auc"] for o in outs])) for a in attacks}
        doc = {"attacks": attacks, "auc": auc, "folds": k, "repeats": repeats, "photos_per_person": per_class,
               "chosen_per_fold": [o["strongest"]["chosen"] for o in outs],
               "chosen_per_fold_at_fpr": {f"{t:g}": [o["strongest"]["chosen_at"][t] for o in outs]
                                          for t in FPR_TARGETS},
               "members": n_mem, "nonmembers": n_non, "left_out_unknown": int((~known).sum()),
               "left_out_single_image": int(len(np.unique(subjects)) - len(y_all)) + int((~usable).sum()),
               "reference_models": [m.info.sha256 for m in ctx.reference_models],
               "learned_C": [o["learned"]["C"] for o in outs],
               "scores": {a: [round(float(v), 6) for v in features[a]] for a in features},
               "member": y.tolist(), "persons": [str(p) for p in persons]}
        result.artifacts.append(Artifact.json(self.name, "attacks.json", doc))
        result.artifacts.append(self._outcomes(ctx, subjects, persons, y, [o["strongest"] for o in outs], n_non, k))
        result.notes.append(
            f"Membership: {n_mem} member and {n_non} non-member persons; attacks {', '.join(attacks)}; "
            f"{k} stratified person folds repeated {repeats} times. Thresholds and the strongest attack are chosen "
            "on the other folds' persons; intervals resample persons, choose every threshold again on each resample, "
            "and are widened for the trained attacker's own variability.")
        ctx.progress(1.0, "done")
        return result

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _reference(ctx: ProbeContext, model, subjects, persons) -> np.ndarray:
        """The reference model's scores of ``persons`` (the same rows as the target's)."""
        emb = np.concatenate([model.infer.embed(faces) for _, faces in ctx.faces.chunks()])
        ref_persons, scores = person_scores(emb, subjects)
        pos = {p: i for i, p in enumerate(ref_persons)}
        return scores[[pos[p] for p in persons]]

    def _outcomes(self, ctx: ProbeContext, subjects, persons, y, strongest: list[dict], n_non: int,
                  k: int) -> Artifact:
        """Per-person outcomes of the strongest attack, for paired comparisons of models audited on the same
        persons (units: persons, keyed by each person's first manifest row), as ``folds`` series: every fold's
        training and test persons with the scores of the attack it used (``cv``: one list of folds per repeat), so
        that a comparison computes the AUC as the run does (:func:`fold_auc`) and chooses every fold's threshold
        again on each replicate (:func:`rechosen_rate`, TPR at FPR 0.1). Flags held fixed told two models with
        equal TPR apart in 15-23% of simulated datasets at a nominal 5% (a review of the comparison)."""
        names, first = np.unique(subjects, return_index=True)
        rows = ctx.faces.rows[first[np.searchsorted(names, persons)]]
        t = FPR_TARGETS[0]

        def cv(folds):
            return [{"train": tr.tolist(), "train_scores": np.asarray(s_tr, float).tolist(), "test": te.tolist(),
                     "test_scores": np.asarray(s_te, float).tolist()} for tr, s_tr, te, s_te in folds]

        series = [{"metric": "membership_auc", "condition": "clean", "setting": "strongest", "attribute": "",
                   "kind": "folds", "y": y, "folds": k, "cv": [cv(r["folds"]) for r in strongest],
                   "fitted": learned_share(strongest)},
                  {"metric": "membership_tpr_at_fpr", "condition": "clean",
                   "setting": operating_point("fpr", t, bool(needs_more(n_non, t)), "strongest"),
                   "attribute": "", "kind": "folds", "y": y, "folds": k, "rate": t,
                   "cv": [cv(r["folds_at"][t]) for r in strongest], "fitted": learned_share(strongest, t)}]
        return outcomes_artifact(self.name, rows, persons, series)

    @staticmethod
    def _folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return list(StratifiedKFold(k, shuffle=True, random_state=seed % 2**32).split(np.zeros(len(y)), y))

    def _cross_validate(self, features: dict, x: np.ndarray, y: np.ndarray, folds, seed: int) -> dict:
        """Per attack: every fold's (training persons, their scores, test persons, their scores), and the flags at
        each FPR target and at the best-balanced-accuracy threshold, all chosen on the other folds' persons."""
        n = len(y)
        names = list(features) + ["learned"]
        out = {a: {"flag": {t: np.zeros(n, bool) for t in FPR_TARGETS}, "bacc": np.zeros(n, bool),
                   "folds": []} for a in names + ["strongest"]}
        out["learned"]["C"] = []
        out["strongest"]["chosen"] = []
        out["strongest"]["chosen_at"] = {t: [] for t in FPR_TARGETS}
        out["strongest"]["folds_at"] = {t: [] for t in FPR_TARGETS}
        for f, (tr, te) in enumerate(folds):
            train_scores, test_scores = {}, {}
            for a, s in features.items():
                train_scores[a], test_scores[a] = s[tr], s[te]
            inner = StratifiedKFold(3, shuffle=True, random_state=derive_seed(seed, "inner", f) % 2**32)
            model = _logistic(seed=derive_seed(seed, "fit", f)).fit(x[tr], y[tr])
            c = float(model[-1].best_params_["C"])
            # The training scores that set the thresholds come from models with the C the test scores' model has: a
            # logistic decision function's scale depends on C, so inner models each with their own C put the
            # thresholds on another scale than the scores they are applied to (a review of the probe).
            train_scores["learned"] = cross_val_predict(_logistic(c), x[tr], y[tr], cv=inner,
                                                        method="decision_function")
            test_scores["learned"] = model.decision_function(x[te])
            out["learned"]["C"].append(c)
            train_auc = {a: _auc(train_scores[a], y[tr]) for a in names}
            best = max(names, key=lambda a: (train_auc[a], -names.index(a)))
            out["strongest"]["chosen"].append(best)
            # At each false-positive target the strongest attack is the one that flagged the most training members
            # at that target on the training persons (AUC, then order, breaks ties): attacks rank differently at a
            # low false-positive rate than by AUC (Carlini et al. 2022), and the rules judge the rate there.
            best_at = {t: max(names, key=lambda a: (_train_tpr(train_scores[a], y[tr], t), train_auc[a],
                                                    -names.index(a))) for t in FPR_TARGETS}
            for t in FPR_TARGETS:
                out["strongest"]["chosen_at"][t].append(best_at[t])
            for a in names + ["strongest"]:
                src = best if a == "strongest" else a
                s_tr, s_te = train_scores[src], test_scores[src]
                neg = s_tr[y[tr] == 0]
                out[a]["folds"].append((tr, s_tr, te, s_te))
                for t in FPR_TARGETS:
                    if a == "strongest":
                        s_tr_t, s_te_t = train_scores[best_at[t]], test_scores[best_at[t]]
                        out[a]["folds_at"][t].append((tr, s_tr_t, te, s_te_t))
                        out[a]["flag"][t][te] = s_te_t >= threshold_at_fmr(s_tr_t[y[tr] == 0], t)
                    else:
                        out[a]["flag"][t][te] = s_te >= threshold_at_fmr(neg, t)
                out[a]["bacc"][te] = s_te >= _threshold_bacc(s_tr, y[tr])
        for a in names + ["strongest"]:
            # A score attack fits nothing for its AUC (any threshold, the same ranking): the AUC of its own score over
            # every person. A fitted or chosen attack's scores are on its fold's own scale: its AUC is that of the
            # (member, non-member) pairs tested by the same fold's attack, pooled over folds; the per-fold rescaled
            # scores pooled across folds were coarse on a few dozen persons and understated it by 0.03-0.14
            # at 10-30 persons a class (a review of the probe).
            if a in features:
                out[a]["ranked"] = features[a]
                out[a]["auc"] = _auc(features[a], y)
            else:
                out[a]["auc"] = float(fold_auc(out[a]["folds"], y, np.ones((1, n)))[0])
        return out

    def _records(self, attack: str, per_repeat: list[dict], y: np.ndarray, boot: SubjectBootstrap,
                 folds: int) -> list[MetricRecord]:
        """AUC, balanced accuracy, TPR and achieved FPR at each target for one attack, pooled over repeats
        (value: mean; interval: every repeat's person resamples, the rates' thresholds chosen again on each), each
        rate with its exact-binomial floor on its own persons (the AUC's on its Hanley-McNeil trials,
        :func:`audit.metrics.stats.auc_trials`). Only an attack fitted on other folds is widened for its training's
        own variability (Nadeau & Bengio): the learned attacker, and the strongest by the share of folds that chose
        the learned one (for each measure, the folds' choice for it); a score attack fits nothing but thresholds, and
        those the resamples already choose again (widened whatever the folds chose, the strongest attack's intervals
        held the truth 0.98-1.0 of the time for a nominal 0.95, and the rules read their lower end; a review of the
        probe)."""
        mem, non = y == 1, y == 0
        n_mem, n_non = int(mem.sum()), int(non.sum())
        records = []

        def add(metric, est, direction, setting, t=None):
            if attack in FITTED:
                share = learned_share(per_repeat, t) if attack == "strongest" else 1.0
                est = widen_for_training(est, folds, share=share) if share else est
            records.append(MetricRecord.of(self.name, "clean", metric, est, direction, setting=setting))

        aucs, auc_boots = [], []
        for r in per_repeat:
            aucs.append(r["auc"])
            for w in boot.image_weights():
                auc_boots.append(eer_auc_many(r["ranked"][non], r["ranked"][mem], w[:, non], w[:, mem])[3]
                                 if "ranked" in r else fold_auc(r["folds"], y, w))
        auc, auc_boots = float(np.mean(aucs)), np.concatenate(auc_boots)
        trials = auc_trials(auc, n_mem, n_non)
        est = boot.from_resamples(auc, auc_boots, persons=len(y), observations=min(n_mem, n_non))
        add("membership_auc", floor_rate(est, trials, boots=auc_boots, observations=trials), RISK, attack)
        # Every threshold is chosen again on each resample's training persons (each fold's, weighted by how often
        # the resample drew them): a threshold from the tail of a few dozen non-members varies about as much as
        # the members flagged by it, which resampling persons with the flags held fixed would not show.
        weights = list(boot.image_weights())
        bacc = lambda r, w: 0.5 * (rechosen_rate(r["folds"], y, mem, w, None)  # noqa: E731
                                   + 1 - rechosen_rate(r["folds"], y, non, w, None))
        full = [0.5 * ((r["bacc"] & mem).sum() / n_mem + (~r["bacc"] & non).sum() / n_non) for r in per_repeat]
        with np.errstate(invalid="ignore", divide="ignore"):
            boots = np.concatenate([bacc(r, w) for r in per_repeat for w in weights])
        add("membership_balanced_accuracy", boot.from_resamples(float(np.mean(full)), boots, rate=True), RISK, attack)
        for t in FPR_TARGETS:
            setting = operating_point("fpr", t, bool(needs_more(n_non, t)), attack)
            for metric, who, persons, direction in (("membership_tpr_at_fpr", mem, n_mem, RISK),
                                                    ("membership_fpr", non, n_non, NEUTRAL)):
                value = float(np.mean([(r["flag"][t] & who).sum() / who.sum() for r in per_repeat]))
                with np.errstate(invalid="ignore", divide="ignore"):
                    boots = np.concatenate([rechosen_rate(r.get("folds_at", {}).get(t, r["folds"]), y, who, w, t)
                                            for r in per_repeat for w in weights])
                add(metric, boot.from_resamples(value, boots, rate=True, persons=persons, observations=persons),
                    direction, setting, t)
        return records


def learned_share(strongest: list[dict], fpr: float | None = None) -> float:
    """The share of the strongest attack's folds (over every repeat) that chose the learned attacker, fitted on their
    persons: by AUC, or at the false-positive target ``fpr``. Its fit variance widens the single run's interval and a
    paired comparison's in this share."""
    return float(np.mean([c == "learned" for r in strongest for c in (r["chosen"] if fpr is None else
                                                                        r["chosen_at"][fpr])]))


def rechosen_rate(folds: list, y: np.ndarray, who: np.ndarray, w: np.ndarray, fpr: float | None) -> np.ndarray:
    """Share of the persons ``who`` flagged, on each resample (rows of person weights ``w``), with every fold's
    threshold chosen again on that fold's training persons weighted as the resample drew them: at ``fpr``, as
    :func:`audit.metrics.verification.threshold_at_fmr` on the training non-members; with ``fpr`` None, the
    best balanced accuracy on the training persons (:func:`_threshold_bacc`). With unit weights it gives the
    flags the cross-validation stored."""
    num, den = np.zeros(len(w)), w[:, who].sum(1)
    for tr, s_tr, te, s_te in folds:
        if fpr is not None:  # the training non-members, highest first; the threshold sits just above the k-th
            keep = y[tr] == 0
            order = np.argsort(-s_tr[keep], kind="stable")
            desc, cw = s_tr[keep][order], np.cumsum(w[:, tr[keep][order]], 1)
            k = np.floor(fpr * cw[:, -1])
            j = np.minimum((cw <= k[:, None]).sum(1), len(desc) - 1)
            flag = s_te[None, :] > desc[j][:, None]
        else:  # candidates: the training scores; flag when score >= candidate; first best from the lowest up
            order = np.argsort(s_tr, kind="stable")[::-1]
            desc = s_tr[order]
            wm, wn = w[:, tr[order]] * (y[tr][order] == 1), w[:, tr[order]] * (y[tr][order] == 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                gain = np.cumsum(wm, 1) / wm.sum(1, keepdims=True) - np.cumsum(wn, 1) / wn.sum(1, keepdims=True)
            ends = np.r_[desc[1:] != desc[:-1], True]  # a candidate flags every score tied with it
            gain = np.where(ends[None, :], np.nan_to_num(gain, nan=-np.inf), -np.inf)
            best = gain >= gain.max(1, keepdims=True) - TIE  # rounding must not split a tie _threshold_bacc sees
            j = gain.shape[1] - 1 - np.argmax(best[:, ::-1], 1)
            flag = s_te[None, :] >= desc[j][:, None]
        sel = who[te]
        num += (w[:, te[sel]] * flag[:, sel]).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def _train_tpr(s: np.ndarray, y: np.ndarray, fpr: float) -> float:
    """Share of the members among (``s``, ``y``) flagged at the threshold those same persons' non-members give for
    ``fpr`` (as the held-out flags are set): how an attack did at that operating point on the training persons."""
    return float(np.mean(s[y == 1] >= threshold_at_fmr(s[y == 0], fpr)))


def _auc(scores: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else float("nan")
