"""Leakage probe: can protected attributes be read from the model's output, with and without masks?

For each attribute, attackers (logistic/ridge regression, k-nearest neighbours and a small
MLP, each with its hyperparameter chosen by inner grouped cross-validation, on the clean outputs and, for the
regularisation and k of an attacker trained on an occluded condition, on that condition's own) are trained on
person-grouped folds of the embeddings (stratified by the person's class or age bracket), and
the cross-validation is repeated with different
split seeds; out-of-fold predictions give the metrics, pooled over repeats, and in each fold
the attacker that did best on the other folds is used. Masked conditions are judged in two settings:
``train=clean`` (attacker trained on clean faces, tested on masked ones: does a mask fool an
existing attacker?) and ``train=same`` (trained and tested on masked faces: can an attacker
that has seen masks still read the attribute?). The mask effect (masked - clean) has its
own paired bootstrap interval. Attribute models are also evaluated directly
(``setting=direct``) through their declared heads.
"""

from __future__ import annotations

import numpy as np

from audit.data import is_regression
from audit.data.groups import age_bucket
from audit.errors import ConfigError
from audit.metrics.stats import Estimate, SubjectBootstrap, widen_for_training
from audit.data.split import subject_folds
from audit.probes.attackers import FAMILIES, fit_attackers, tune
from audit.seeding import derive_seed
from audit.probes.base import Artifact, MetricRecord, ProbeContext, ProbeResult, outcomes_artifact, register

RISK, SAFE, NEUTRAL = "higher_is_riskier", "lower_is_riskier", "neutral"


def _confusion(y: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k)


def categorical_stats(y: np.ndarray, p: np.ndarray, k: int) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1 and normalised gain for integer labels 0..k-1."""
    return {m: float(v[0]) for m, v in confusion_stats(_confusion(y, p, k)[None]).items()}


def confusion_stats(cm: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`categorical_stats` of a stack of (k, k) confusion matrices (truth x prediction), one value per
    matrix: the bootstrap computes every resample's matrix at once (SubjectBootstrap.resample_sums)."""
    cm = np.asarray(cm, float)
    support, predicted = cm.sum(2), cm.sum(1)
    diag = np.diagonal(cm, axis1=1, axis2=2)
    present = support > 0
    n_present = present.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = np.divide(diag, support, out=np.zeros_like(diag), where=present)
        prec = np.divide(diag, predicted, out=np.zeros_like(diag), where=predicted > 0)
        f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros_like(diag), where=(prec + rec) > 0)
        bacc = np.where(n_present > 0, (rec * present).sum(1) / n_present, np.nan)
        macro_f1 = np.where(n_present > 0, (f1 * present).sum(1) / n_present, np.nan)
        chance = 1.0 / np.maximum(n_present, 1)
        gain = np.where(chance < 1, (bacc - chance) / (1 - chance), np.nan)
        accuracy = diag.sum(1) / np.maximum(cm.sum((1, 2)), 1)
    return {"accuracy": accuracy, "balanced_accuracy": bacc, "macro_f1": macro_f1, "chance": chance,
            "normalised_gain": gain}


def age_stats(y: np.ndarray, p: np.ndarray, train_median: float) -> dict[str, float]:
    mae = float(np.mean(np.abs(y - p)))
    base = float(np.mean(np.abs(y - train_median)))
    return {"mae": mae, "rmse": float(np.sqrt(np.mean((y - p) ** 2))), "baseline_mae": base,
            "mae_gain": 1 - mae / base if base > 0 else float("nan"),
            "bucket_accuracy": float(np.mean(age_bucket(y) == age_bucket(p)))}


CATEGORICAL_DIRECTIONS = {"accuracy": RISK, "balanced_accuracy": RISK, "macro_f1": RISK, "chance": NEUTRAL,
                          "normalised_gain": RISK}
AGE_DIRECTIONS = {"mae": SAFE, "rmse": SAFE, "baseline_mae": NEUTRAL, "mae_gain": RISK, "bucket_accuracy": RISK}
HEADLINE = {"categorical": "normalised_gain", "age": "mae_gain"}
OWN_TUNING = ("logreg", "ridge", "knn")
"""Families whose hyperparameter an occluded condition's attackers choose on its own outputs (the others: clean's)."""
RATE_METRICS = {"accuracy", "bucket_accuracy", "balanced_accuracy"}
"""Shares of images (balanced accuracy: the mean of per-class shares): their intervals get the exact-binomial
floor."""
def _settings(cond: str) -> list[str]:
    """The attacker settings measured under ``cond``: its own attackers, and under an occlusion the clean ones too."""
    return ["train=same"] + (["train=clean"] if cond != "clean" else [])


UNBOUNDED = (-np.inf, np.inf)
BOUNDS = {"accuracy": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0), "macro_f1": (0.0, 1.0), "bucket_accuracy": (0.0, 1.0),
          "normalised_gain": (-np.inf, 1.0), "mae_gain": (-np.inf, 1.0), "mae": (0.0, np.inf), "rmse": (0.0, np.inf),
          "mask_effect": UNBOUNDED, "chance": (0.0, 1.0)}
"""Where a widened interval must stay (:func:`audit.metrics.stats.widen_for_training`)."""


@register
class LeakageProbe:
    name = "leakage"
    title = "Attribute leakage"

    def check(self, config, dataset, model) -> None:
        attrs = config.attributes if config.attributes is not None else dataset.attributes
        missing = [a for a in attrs if a not in dataset.manifest.columns]
        if missing:
            raise ConfigError(f"leakage: attribute(s) {missing} not in the manifest {dataset.source} "
                              f"(it has {dataset.attributes})")
        if not attrs:
            raise ConfigError(f"leakage: the dataset {dataset.source} has no attribute columns to attack")
        k = config.setting("folds")
        if dataset.n_subjects < 2 * k:
            raise ConfigError(f"leakage: {k}-fold subject split needs at least {2 * k} subjects; "
                              f"{dataset.source} has {dataset.n_subjects}")

    def _not_attacked(self, ctx: ProbeContext, attrs: list[str], result: ProbeResult) -> None:
        """An attribute the faces are labelled with that ``--attributes`` left out is stored without a number (its
        headline metric, every condition and attacker), with a note: a rule on it then says it was not judged
        instead of "no result" as if the dataset had no such labels, and a strict gate does not open on it (a
        review of the verdicts: ``--attributes sex`` left every skin-tone rule quietly unjudged). The negative
        control is no person's attribute and is left out as asked."""
        left = [a for a in ctx.dataset.attributes if a not in attrs and a != "control"]
        for attr in left:
            result.metrics += self._without_number(attr, ctx.config.conditions,
                                                   int((~_isnull(ctx.column(attr))).sum()))
        if left:
            result.notes.append(f"leakage: attribute{'s' if len(left) > 1 else ''} "
                                f"{', '.join(repr(a) for a in left)} labelled in the dataset but not attacked "
                                f"(--attributes {','.join(attrs)}): stored without a number, so no rule on "
                                f"{'them' if len(left) > 1 else 'it'} is judged as passing")

    def _without_number(self, attr: str, conditions: list[str], labelled: int) -> list[MetricRecord]:
        """``attr``'s headline metric under every condition and attacker, stored without a number (not attacked)."""
        metric = HEADLINE["age" if is_regression(attr) else "categorical"]
        direction = (AGE_DIRECTIONS if is_regression(attr) else CATEGORICAL_DIRECTIONS)[metric]
        return [MetricRecord.without_number(self.name, cond, metric, direction, labelled, attribute=attr,
                                            setting=setting) for cond in conditions for setting in _settings(cond)]

    def run(self, ctx: ProbeContext) -> ProbeResult:
        cfg = ctx.config
        attrs = cfg.attributes if cfg.attributes is not None else ctx.dataset.attributes
        subjects = ctx.subjects
        k, repeats = cfg.setting("folds"), cfg.setting("cv_repeats")
        boot = SubjectBootstrap(subjects, cfg.setting("bootstrap"), ctx.seed, "leakage")
        conditions = cfg.conditions
        result = ProbeResult()
        doc: dict = {"folds": k, "repeats": repeats, "grids": {t: {f: list(g) for f, g in fam.items()}
                                                                  for t, fam in FAMILIES.items()},
                     "tuning": {}, "results": {}}
        self._not_attacked(ctx, attrs, result)
        clean_emb = ctx.embeddings("clean")
        series: list[dict] = []
        steps = len(attrs) * len(conditions)
        done = 0
        for attr in attrs:
            raw = ctx.column(attr)
            keep = ~_isnull(raw)
            regression = is_regression(attr)
            if regression:
                y = raw.astype(float)
                labels = None
            else:
                named_by = raw.astype(str)
                rare = _rare_classes(named_by[keep], subjects[keep])
                if rare and len(np.unique(named_by[keep])) > 1:
                    # a class one person holds lands wholly in one fold, leaving training folds without it (the
                    # attacker's fit then failed, and with it every attribute's leakage: a review of the probes)
                    keep &= ~np.isin(named_by, rare)
                    named = ", ".join(repr(c[:40]) for c in rare[:5]) + (f" and {len(rare) - 5} more" if len(rare) > 5
                                                                         else "")
                    result.notes.append(f"leakage: attribute {attr!r}: class{'es' if len(rare) > 1 else ''} {named} "
                                        "left out of the attack: each held by one labelled person, whom a person "
                                        "split cannot put on both sides")
                labels, y = np.unique(named_by[keep], return_inverse=True)
                y_full = np.full(len(raw), -1)
                y_full[keep] = y
                y = y_full
            task = "regression" if regression else "classification"
            persons, classes = len(np.unique(subjects[keep])), None if regression else len(labels)
            labelled = (persons, int(keep.sum()))
            if persons < 2 * k or (classes is not None and classes < 2):
                # Too few labelled persons for a person split (a labels file that matches one person): the other
                # attributes are still attacked; this one is stored without a value, so a rule that reads it with
                # others (skin_tone with race) cannot pass on the others alone.
                result.metrics += self._without_number(attr, conditions, labelled[1])
                result.notes.append(f"leakage: attribute {attr!r} not attacked: {persons} labelled persons"
                                    + (f" in {classes} class{'es' if classes != 1 else ''}" if classes is not None
                                       else "") + f"; a {k}-fold person split needs at least {2 * k} labelled "
                                    "persons" + ("" if regression else " and two classes"))
                done += len(conditions)
                continue
            # Folds stratified by the person's class (age bracket for age): see subject_folds.
            strata = np.where(keep, age_bucket(y) if regression else y, -1)
            splits = [subject_folds(subjects, k, derive_seed(ctx.seed, "leakage-split", r), strata=strata)
                      for r in range(repeats)]
            # Hyperparameters by inner grouped CV on the clean outputs, once per attribute (recorded with the run);
            # the smallest outer training fold bounds k of k-nearest neighbours on small data sets.
            min_train = min(int(keep[tr].sum()) for folds in splits for tr, _ in folds)
            tuned = tune(clean_emb[keep], y[keep], subjects[keep], task, cfg.setting("mlp_epochs"),
                         derive_seed(ctx.seed, "tune", attr), min_train=min_train, strata=strata[keep])
            doc["tuning"][attr] = tuned
            params = {f: t["param"] for f, t in tuned.items()}

            def own_params(cond: str, emb: np.ndarray) -> dict:
                """An occluded condition's attackers (train=same) with the regularisation and k chosen on its own
                outputs (the MLP's width stays clean's: its fits are the slow ones): a weaker, noisier signal wants
                more regularisation than clean's (fr-private, sex, under an N95 mask: C 3 chosen on clean against
                0.03 on the masked outputs, its gain 0.03-0.045 too low and a fail read as a warn; a review of the
                probe)."""
                own = tune(emb[keep], y[keep], subjects[keep], task, cfg.setting("mlp_epochs"),
                           derive_seed(ctx.seed, "tune", attr, cond), min_train=min_train, strata=strata[keep],
                           families=OWN_TUNING)
                doc["tuning"][f"{attr}|{cond}"] = own
                return {**params, **{f: t["param"] for f, t in own.items()}}
            clean_fits = self._fit_folds(clean_emb, y, keep, splits, task, params, cfg, ctx.seed, f"{attr}:clean")
            clean_preds = clean_resampled = None
            for cond in conditions:
                emb = clean_emb if cond == "clean" else ctx.embeddings(cond)
                # train=same: attackers fitted on this condition's outputs; train=clean: the clean ones
                for setting in _settings(cond):
                    same = setting == "train=same" and cond != "clean"
                    used = own_params(cond, emb) if same else params
                    fits = self._fit_folds(emb, y, keep, splits, task, used, cfg, ctx.seed,
                                           f"{attr}:{cond}") if same else clean_fits
                    oofs = [self._predict(f, emb, folds, len(y)) for f, folds in zip(fits, splits)]
                    chosen = [self._best(o, y, keep, folds, regression, labels) for o, folds in zip(oofs, splits)]
                    preds = [o["_selected"] for o in oofs]
                    medians = [o["_median"] for o in oofs]
                    # Every metric on every resample, computed once per setting and shared by the metric records
                    # and (categorical) the mask effect; clean's are kept for every condition's effect.
                    resampled = self._age_boots(preds, medians, y, keep, boot) if regression else \
                        self._categorical_boots(preds, y, keep, boot, len(labels))
                    result.metrics += self._records(cond, setting, attr, resampled, boot, regression, k, labelled)
                    if not regression:  # per-image predictions for paired comparisons between models
                        series.append({"metric": "normalised_gain", "condition": cond, "setting": setting,
                                       "attribute": attr, "kind": "gain", "y": y, "pred": preds, "k": len(labels),
                                       "folds": k})
                    doc["results"][f"{cond}|{setting}|{attr}"] = {
                        "metric": HEADLINE["age" if regression else "categorical"],
                        "scores": self._family_scores(oofs, y, keep, regression, labels),
                        "selected_per_fold": chosen,
                        "hyperparameters": used}
                    if cond == "clean":
                        clean_preds, clean_resampled = preds, resampled
                    else:
                        result.metrics.append(self._effect(cond, setting, attr, preds, clean_preds, resampled,
                                                           clean_resampled, y, keep, boot, regression, labels, k,
                                                           labelled))
                done += 1
                ctx.progress(done / (steps + 1), f"{attr} under {cond}")
        if ctx.model.profile.kind == "attributes":
            result.metrics += self._direct(ctx, attrs, boot)
        result.artifacts.append(Artifact.json(self.name, "attackers.json", doc))
        result.artifacts.append(outcomes_artifact(self.name, ctx.faces.rows, subjects, series))
        result.notes.append(
            f"Leakage: {k}-fold person-grouped cross-validation repeated {repeats} times with different splits; "
            "values are the mean over repeats and intervals pool the person resamples of every repeat, so they "
            "include split-to-split variance. Attackers: logistic (ridge) regression, k-nearest neighbours and an "
            "MLP, each with its hyperparameter chosen by inner grouped cross-validation (an occluded condition's "
            "regularisation and k on its own outputs, the MLP's width on clean's); in each fold the attacker "
            "that did best on the other folds is used.")
        ctx.progress(1.0, "done")
        return result

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _fit_folds(emb, y, keep, splits, task, params, cfg, seed, key):
        """Per repeat, per fold: (fitted attackers by family, training median of y)."""
        cells = [(r, f, tr[keep[tr]]) for r, folds in enumerate(splits) for f, (tr, _) in enumerate(folds)]
        jobs = [(fam, p, derive_seed(seed, "attacker", fam, key, r, f), tr)
                for r, f, tr in cells for fam, p in params.items()]
        fitted = iter(fit_attackers(emb, y, jobs, task, cfg.setting("mlp_epochs")))
        per_cell = [({fam: next(fitted) for fam in params}, float(np.median(y[tr])) if task == "regression" else None)
                    for _, _, tr in cells]
        starts = np.cumsum([0] + [len(folds) for folds in splits])
        return [per_cell[a:b] for a, b in zip(starts[:-1], starts[1:])]

    @staticmethod
    def _predict(fits, emb, folds, n):
        oof: dict[str, np.ndarray] = {}
        for (atk, _), (_, te) in zip(fits, folds):
            for name, a in atk.items():
                if name not in oof:
                    oof[name] = np.zeros(n, dtype=float)
                oof[name][te] = a.predict(emb[te])
        oof["_median"] = np.zeros(n)
        for (_, med), (_, te) in zip(fits, folds):
            oof["_median"][te] = med if med is not None else 0
        return oof

    def _family_scores(self, oofs, y, keep, regression, labels) -> dict[str, float]:
        """Headline metric of every attacker family on its own (mean over repeats): the report lists them all."""
        metric = HEADLINE["age" if regression else "categorical"]
        idx = np.arange(len(y))
        fams = [f for f in oofs[0] if not f.startswith("_")]
        return {f: float(np.mean([self._stat_fn(y, o[f], keep, regression, labels, o["_median"], metric)(idx)
                                  for o in oofs])) for f in fams}

    @staticmethod
    def _best(oof, y, keep, folds, regression, labels):
        """Combine attackers without peeking: fold f uses the attacker that scored best on the *other* folds.

        Choosing the stronger attacker on the same predictions that are then reported would bias
        leakage upwards (visible on the never-rendered control attribute); leave-one-fold-out
        selection keeps every reported prediction independent of the choice made for it.
        """
        names = [n for n in oof if not n.startswith("_")]

        def score(name, idx):
            idx = idx[keep[idx]]
            if len(idx) == 0:
                return -np.inf
            if regression:
                return -float(np.mean(np.abs(y[idx] - oof[name][idx])))
            return categorical_stats(y[idx], oof[name][idx].astype(int), len(labels))["balanced_accuracy"]

        combined = np.zeros(len(y), dtype=float)
        chosen = []
        for _, te in folds:
            others = np.setdiff1d(np.concatenate([t for _, t in folds]), te)
            best = max(names, key=lambda n: score(n, others))
            combined[te] = oof[best][te]
            chosen.append(best)
        oof["_selected"] = combined
        return chosen

    @staticmethod
    def _stat_fn(y, p, keep, regression, labels, median, metric):
        def fn(idx):
            idx = idx[keep[idx]]
            if len(idx) == 0:
                return float("nan")
            if regression:
                return age_stats(y[idx], p[idx], float(np.median(median[idx])))[metric]
            return categorical_stats(y[idx], p[idx].astype(int), len(labels))[metric]
        return fn

    def _records(self, cond, setting, attr, resampled, boot, regression, folds, labelled=(None, None)):
        """Every metric pooled over the cross-validation repeats (value: mean; interval: all resamples);
        ``resampled``: :meth:`_age_boots` / :meth:`_categorical_boots` of the repeats' predictions.

        What the intervals are for: the expected score, on new persons, of an attacker of this kind trained
        on (folds - 1) / folds of this many persons (the training size of each fold). Shares get the
        exact-binomial floor (balanced accuracy too); the normalised gain is balanced accuracy rescaled, so it
        takes balanced accuracy's interval rescaled; every interval is widened for the trained attacker's own
        variability (:func:`audit.metrics.stats.widen_for_training`). ``labelled``: the persons and images with the
        attribute, which the intervals and ``n`` count (a labels file may cover a few of the dataset's persons)."""
        full, boots = resampled
        directions = AGE_DIRECTIONS if regression else CATEGORICAL_DIRECTIONS
        persons, images = labelled
        est = {m: boot.from_resamples(np.mean(full[m]), boots[m], rate=m in RATE_METRICS, persons=persons,
                                      observations=images) for m in directions}
        if not regression:
            c, b = float(np.mean(full["chance"])), est["balanced_accuracy"]
            if c < 1:
                est["normalised_gain"] = Estimate(est["normalised_gain"].value, (b.ci_low - c) / (1 - c),
                                                  (b.ci_high - c) / (1 - c), b.n)
        return [MetricRecord.of(self.name, cond, m, widen_for_training(est[m], folds, BOUNDS.get(m, UNBOUNDED)),
                                direction, attribute=attr, setting=setting) for m, direction in directions.items()]

    @staticmethod
    def _age_boots(preds, medians, y, keep, boot):
        """:func:`age_stats` of each repeat's predictions on all images (``full``: one value per repeat) and on
        every person resample (``boots``: repeats x resamples), every metric from one pass over the resamples;
        the baseline is the median of the training medians of the images drawn."""
        full, boots = {}, {}
        everyone = np.arange(len(y))
        resamples = boot.indices()
        for p, med in zip(preds, medians):
            def stats(idx):
                idx = idx[keep[idx]]
                if len(idx) == 0:
                    return dict.fromkeys(AGE_DIRECTIONS, float("nan"))
                return age_stats(y[idx], p[idx], float(np.median(med[idx])))
            for m, v in stats(everyone).items():
                full.setdefault(m, []).append(v)
            per = [stats(idx) for idx in resamples]
            for m in AGE_DIRECTIONS:
                boots.setdefault(m, []).append([r[m] for r in per])
        return {m: np.array(v) for m, v in full.items()}, {m: np.array(v) for m, v in boots.items()}

    @staticmethod
    def _categorical_boots(preds, y, keep, boot, k):
        """Categorical statistics of each repeat's predictions on all images (``full``: one value per repeat) and
        on every person resample (``boots``: repeats x resamples), from confusion matrices summed per resample."""
        full, boots = {}, {}
        kept = np.flatnonzero(keep)
        for p in preds:
            cells = np.zeros((len(y), k * k))
            cells[kept, y[kept] * k + p[kept].astype(int)] = 1
            for m, v in confusion_stats(cells.sum(0).reshape(1, k, k)).items():
                full.setdefault(m, []).append(v[0])
            for m, v in confusion_stats(boot.resample_sums(cells).reshape(-1, k, k)).items():
                boots.setdefault(m, []).append(v)
        return {m: np.array(v) for m, v in full.items()}, {m: np.stack(v) for m, v in boots.items()}

    def _effect(self, cond, setting, attr, preds, clean_preds, cat, clean_cat, y, keep, boot, regression, labels, folds,
                labelled=(None, None)):
        """Condition minus clean on the same persons, folds and resamples, pooled over repeats (``cat`` /
        ``clean_cat``: :meth:`_categorical_boots` of each, unused for regression)."""
        metric = HEADLINE["age" if regression else "categorical"]
        if not regression:
            (full_c, boots_c), (full_0, boots_0) = cat, clean_cat
            est = boot.from_resamples(np.mean(full_c[metric] - full_0[metric]), boots_c[metric] - boots_0[metric],
                                      persons=labelled[0], observations=labelled[1])
            return MetricRecord.of(self.name, cond, "mask_effect", widen_for_training(est, folds, UNBOUNDED),
                                   NEUTRAL, attribute=attr, setting=setting)
        med = np.full(len(y), np.median(y[keep]))
        fns = []
        for p, c in zip(preds, clean_preds):
            a = self._stat_fn(y, p, keep, regression, labels, med, metric)
            b = self._stat_fn(y, c, keep, regression, labels, med, metric)
            fns.append(lambda i, a=a, b=b: a(i) - b(i))
        est = widen_for_training(boot.pooled(fns), folds, UNBOUNDED)
        return MetricRecord.of(self.name, cond, "mask_effect", est, NEUTRAL, attribute=attr, setting=setting)

    def _direct(self, ctx, attrs, boot):
        """Evaluate an attribute model's own heads on each condition."""
        out = []
        for cond in ctx.config.conditions:
            preds = ctx.model.infer.predict_from_embeddings(ctx.embeddings(cond))
            for head in ctx.model.profile.heads:
                if head.attribute not in attrs:
                    continue
                raw = ctx.column(head.attribute)
                keep = ~_isnull(raw)
                if head.type == "regression":
                    y = raw.astype(float)
                    p = preds[head.attribute]
                    med = np.full(len(y), np.median(y[keep]))
                    stats, labels, regression = AGE_DIRECTIONS, None, True
                else:
                    labels = np.array(head.labels)
                    y = np.array([np.where(labels == v)[0][0] if v in labels else -1 for v in raw.astype(str)])
                    keep &= y >= 0
                    p = preds[head.attribute].argmax(1)
                    med = np.zeros(len(y))
                    stats, regression = CATEGORICAL_DIRECTIONS, False
                for metric, direction in stats.items():
                    est = boot.estimate(self._stat_fn(y, p, keep, regression, labels, med, metric),
                                        rate=metric in RATE_METRICS)
                    out.append(MetricRecord.of(self.name, cond, metric, est, direction, attribute=head.attribute,
                                               setting="direct"))
        return out


def _rare_classes(labels: np.ndarray, subjects: np.ndarray) -> list[str]:
    """The classes of ``labels`` (one per image) that one person alone holds, sorted."""
    import pandas as pd

    persons = pd.Series(subjects).groupby(pd.Series(labels)).nunique()
    return sorted(persons.index[persons < 2])


def _isnull(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.isna(values)
