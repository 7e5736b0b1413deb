"""Identity probe: recognition under occlusion and demographic differentials.

Protocol: for every person the first usable image is the clean gallery entry; all their
other images are probes. The system threshold tau is calibrated on *clean* impostor scores
at FMR 1e-2 / 1e-3 / 1e-4 / 1e-5, for each target the impostor counts support by the rule of
30 (comparisons and person pairs; the others are listed with how many more are needed). For every condition
the probes carry the condition and the gallery stays clean; FNMR and FMR at the global tau,
TAR at an FMR recalibrated within the condition, EER, ROC AUC and rank-1 are reported.
Demographic differentials use one global tau (the tightest supported of 1e-3, 1e-2):
per group FMR (same-group impostor pairs) and FNMR, max/min, max/geomean and the fairness
discrepancy rate (alpha = 0.5). Intervals resample persons; false match rates weigh each comparison
by both its persons' counts in the resample, one draw for the probe and the gallery side, which hold the
same persons (audit/metrics/stats.py), and rates get an exact-binomial floor.
"""

from __future__ import annotations

import numpy as np

import pandas as pd

from audit.data.groups import group_labels
from audit.errors import ConfigError
from audit.metrics import demographic as demo
from audit.metrics import verification as ver
from audit.metrics.settings import operating_point
from audit.metrics.stats import PersonPairs, SubjectBootstrap, effective_trials, mask_positions
from audit.probes.base import (Artifact, MetricRecord, ProbeContext, ProbeResult, kept_impostors, outcomes_artifact,
                               register)
from audit.seeding import rng_for

RISK, SAFE, NEUTRAL = "higher_is_riskier", "lower_is_riskier", "neutral"
ONE_IMAGE = ("identity: needs at least two images of a person (one gallery, one probe); {source} has {n} "
             "subjects with two or more images")
EER_IMPOSTOR_SAMPLE = 20000
EER_TRIALS_PER_GENUINE, AUC_TRIALS_PER_GENUINE = 4, 16
"""The EER, and the AUC's shortfall from 1, are floored as binomial rates on at most this many trials per genuine
comparison (Korn & Graubard's effective size is capped there). Their resamples cannot show errors the sample does
not hold: with the effective size uncapped, simulated AUC intervals held the truth in 0.90 of datasets at 60
persons. These caps were calibrated with benchmarks/coverage.py (genuine intra-class correlation 0.5, probe-,
gallery- and pair-person impostor effects): coverage 0.95-0.98 (EER) and 0.99-1.0 (AUC) at 30, 60 and 200
persons, with intervals 1.1-1.3x as wide as the estimates' true spread over datasets."""


BYTES_PER_COMPARISON = 56
"""Peak memory of the identity probe's statistics per comparison in its probe x gallery score matrix, measured by
``benchmarks/identity_memory.py`` (46.5 to 49.9 bytes at 8 to 24 million comparisons, the clean matrix and one
condition's included), plus the 8 bytes of the clean impostor scores kept through every condition since 0.5.0 (FNMR's
threshold chosen again on each resample): what a run is refused on before it starts when the machine has less
(:meth:`memory`)."""


def split_gallery(subjects: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gallery index per subject, probe indices, probe -> gallery column) for subjects with >= 2 images."""
    uniq, first, counts = np.unique(subjects, return_index=True, return_counts=True)
    keep = counts >= 2
    uniq, first = uniq[keep], first[keep]
    col = {s: j for j, s in enumerate(uniq)}
    gallery = set(first.tolist())
    probes = np.array([i for i, s in enumerate(subjects) if s in col and i not in gallery], dtype=int)
    return first, probes, np.array([col[subjects[i]] for i in probes], dtype=int)


SUMMARIES = {  # differentials of the groups' (FMR, FNMR) rates, each a function of ({group: FMR}, {group: FNMR})
    "fmr_max_min": lambda r: demo.ratio_max_min(r[0]),
    "fmr_max_geomean": lambda r: demo.ratio_max_geomean(r[0]),
    "fnmr_max_min": lambda r: demo.ratio_max_min(r[1]),
    "fnmr_max_geomean": lambda r: demo.ratio_max_geomean(r[1]),
    "fdr": lambda r: demo.fairness_discrepancy_rate(*r),
}

@register
class IdentityProbe:
    name = "identity"
    title = "Identity under occlusion and demographic differentials"
    needs_embedding = True

    def check(self, config, dataset, model) -> None:
        counts = dataset.manifest["subject"].value_counts()
        n = int((counts >= 2).sum())
        if n < 2:
            raise ConfigError(ONE_IMAGE.format(source=dataset.source, n=n))
        if model.profile.kind != "embedding":
            raise ConfigError(f"identity: {model.name} is an attributes model (no embedding to compare); "
                              "run the identity probe on face-recognition models")

    def memory(self, subjects: np.ndarray) -> tuple[int, str]:
        """Bytes the probe's score matrices need on the faces of ``subjects`` (one per face), and what they are, in
        words: quadratic in the images (every probe image against every person's gallery image)."""
        gal, probe_rows, _ = split_gallery(np.asarray(subjects).astype(str))  # the split run() makes
        gallery, probes = len(gal), len(probe_rows)
        return (BYTES_PER_COMPARISON * probes * gallery,
                f"{probes:,} probe images x {gallery:,} gallery images = {probes * gallery:,} comparisons")

    def run(self, ctx: ProbeContext) -> ProbeResult:
        cfg = ctx.config
        subjects = ctx.subjects
        gal, probes, own = split_gallery(subjects)
        result = ProbeResult()
        boot = SubjectBootstrap(subjects[probes], cfg.setting("bootstrap"), ctx.seed, "identity")
        clean = ctx.embeddings("clean")
        g_emb = clean[gal]
        s_clean = ver.cosine_matrix(clean[probes], g_emb)
        imp_mask = np.ones_like(s_clean, dtype=bool)
        imp_mask[np.arange(len(probes)), own] = False
        n_imp = int(imp_mask.sum())
        # Distinct person pairs, each once whichever side is the probe: A's probe against B's gallery image and B's
        # probe against A's are comparisons of the same two persons, whose false matches come together when the two
        # look alike (counted twice, as before 0.6.0, a target was supported on half the pairs the rule of 30 asks for,
        # and not as the inversion probe counted its victims' pairs).
        n_pp = ver.distinct_person_pairs(np.arange(len(gal)), np.arange(len(gal)))
        points = ver.operating_points(n_imp, n_pp)
        result.notes += [p.explain() for p in points if not p.supported]
        targets = [p.fmr for p in points if p.supported]
        if not targets:
            # Too few people for any target: still measured at FMR 1e-2 for information, but labelled so no rule
            # judges it (a rule asks for 'fmr=0.01', these rows say 'fmr=0.01;unsupported').
            targets = [points[0].fmr]
        unsupported = {p.fmr for p in points if not p.supported}
        label = {t: operating_point("fmr", t, t in unsupported) for t in targets}
        taus = {t: ver.threshold_at_fmr(s_clean[imp_mask], t) for t in targets}
        demo_fmr = next((t for t in (1e-3, 1e-2) if t in taus and t not in unsupported), targets[0])
        result.artifacts.append(Artifact.json(self.name, "thresholds.json",
                                              {f"{t:g}": taus[t] for t in targets} | {
                                                  "n_impostors": n_imp, "n_person_pairs": n_pp,
                                                  "demographic_fmr": demo_fmr,
                                                  "operating_points": [p.to_dict() for p in points]}))
        for t in targets:
            result.metrics.append(MetricRecord(self.name, "clean", "threshold", taus[t], taus[t], taus[t], n_imp,
                                               NEUTRAL, setting=label[t]))
        groups = self._groups(ctx, probes, gal)
        labelled = {attr: {v for v in group_labels(pd.Series(ctx.column(attr)), attr) if isinstance(v, str)}
                    for attr in groups}
        pairs = _person_pairs(boot, own, len(gal))
        imp_pairs = pairs.sum(imp_mask)  # impostor comparisons per person pair: the same for every condition
        curves, series = {}, []
        # FNMR's threshold is the clean one: its highest impostor scores are kept with every condition's FNMR
        # outcomes, so that a paired comparison chooses it again on every replicate (as for TAR)
        clean_imp = s_clean[imp_mask]
        clean_kept = {t: kept_impostors(clean_imp, imp_mask, t) for t in targets}
        for ci, cond in enumerate(cfg.conditions):
            # the EER/AUC impostor sample's generator is the condition's own, so that another condition in the list
            # does not change this one's numbers (one stream for all of them did until 0.11.0; a review of the probes)
            rng = rng_for(ctx.seed, "identity-eer", cond)
            emb = clean if cond == "clean" else ctx.embeddings(cond)
            s = s_clean if cond == "clean" else ver.cosine_matrix(emb[probes], g_emb)
            gen = s[np.arange(len(probes)), own]
            curves[cond] = ver.roc_points(s[imp_mask], gen)
            result.metrics += self._verification(cond, s, gen, imp_mask, pairs, imp_pairs, own, taus, label, boot,
                                                 rng, series, clean_kept, clean_imp)
            result.metrics += self._demographics(cond, s, gen, imp_mask, pairs, groups, taus[demo_fmr],
                                                 label[demo_fmr], boot, series, labelled)
            ctx.progress((ci + 1) / len(cfg.conditions), f"identity under {cond}")
        result.artifacts.append(Artifact.json(self.name, "roc.json", curves))
        result.artifacts.append(outcomes_artifact(self.name, ctx.faces.rows[probes], subjects[probes], series,
                                                  {attr: lab[0] for attr, lab in groups.items()},
                                                  {"rows": ctx.faces.rows[gal], "subjects": subjects[gal],
                                                   "groups": {attr: lab[1] for attr, lab in groups.items()}}))
        return result

    def _groups(self, ctx: ProbeContext, probes: np.ndarray, gal: np.ndarray) -> dict[str, tuple]:
        """Each attribute's group of every probe and gallery image (data/groups.group_labels: age brackets for
        age; missing where the value is, which puts the image in no group)."""
        out = {}
        for attr in ctx.dataset.attributes:
            labels = group_labels(pd.Series(ctx.column(attr)), attr).to_numpy(object)
            out[attr] = (labels[probes], labels[gal])
        return out

    def _verification(self, cond, s, gen, imp_mask, pairs, imp_pairs, own, taus, label, boot,
                      rng, series=None, clean_kept=None, clean_imp=None) -> list[MetricRecord]:
        """FNMR, FMR and TAR at each target, EER, ROC AUC and rank-1 under ``cond``; each probe's genuine score with
        the highest clean impostor scores (``clean_kept``, per target: FNMR's threshold) and with the condition's
        own (TAR's) are appended to ``series`` (outcomes for paired comparisons; without ``clean_kept`` each
        probe's miss at the global threshold, as runs did before). FNMR's interval chooses the clean threshold again
        on every resample from ``clean_imp`` (every clean impostor score, laid out as ``imp_mask``), as TAR's chooses
        its own: held at the whole sample's value it was a sixth narrower than 1 - TAR's on the same clean numbers
        (a review of the rules)."""
        name = self.name
        n_probe = len(gen)
        out = []
        # Impostor scores in row-major order; where they lie in the matrix is looked up only for the few that are
        # used (the highest, the EER sample): no index arrays the size of the matrix.
        imp_scores = s[imp_mask]
        ascending = np.sort(imp_scores)  # one sorted copy for the own thresholds, the EER and the AUC
        own_taus = {t: ver.threshold_at_fmr(ascending, t, presorted=True) for t in taus}
        eer_full, auc_full = ver.eer(ascending, gen, presorted=True).mid, ver.auc(ascending, gen, presorted=True)
        del ascending

        def where(idx):  # (probe row, gallery person) of the impostor scores at positions idx
            r, c = mask_positions(imp_mask, idx)
            return r, pairs.gallery_persons[c]

        for t, tau in taus.items():
            # The condition's own threshold is a tail quantile of its impostor scores: chosen again on every resample
            # (persons drawn on both sides), so TAR's interval carries its variability too.
            tar_boots = boot.share_at_own_threshold(gen, imp_scores, where, imp_pairs, t)
            if clean_imp is None:
                fnmr = boot.mean(gen < tau, rate=True)
            else:  # on clean faces the clean threshold is the condition's own: 1 - TAR's resamples
                fnmr = boot.from_resamples(float(np.mean(gen < tau)), 1 - (tar_boots if cond == "clean" else
                                           boot.share_at_own_threshold(gen, clean_imp, where, imp_pairs, t)),
                                           rate=True)
            # FMR compares two persons: both weighed by the resample's one draw of persons.
            fmr = boot.two_way(pairs.sum((s >= tau) & imp_mask), imp_pairs)
            # Privacy risk grows with recognition: a higher clean FNMR (1 - TAR there) is the safer direction.
            out.append(MetricRecord.of(name, cond, "fnmr", fnmr, SAFE if cond == "clean" else NEUTRAL,
                                       setting=label[t]))
            out.append(MetricRecord.of(name, cond, "fmr", fmr, NEUTRAL, setting=label[t]))
            tar = boot.from_resamples(float(np.mean(gen >= own_taus[t])), tar_boots, rate=True)
            out.append(MetricRecord.of(name, cond, "tar_at_fmr", tar, RISK, setting=label[t]))
            if series is not None:  # TAR: the genuine scores and the highest impostor comparisons, so that a paired
                # comparison chooses each model's threshold again on every replicate too
                # FNMR is 1 - the share of genuine scores at or above the clean threshold at rate t ("complement")
                miss = ({"kind": "share_at_rate", "complement": True, "rate": t, "positives": gen, **clean_kept[t]}
                        if clean_kept is not None else {"kind": "share", "values": gen < tau})
                series += [{"metric": "fnmr", "condition": cond, "setting": label[t], "attribute": "", **miss},
                           {"metric": "tar_at_fmr", "condition": cond, "setting": label[t], "attribute": "",
                            "kind": "share_at_rate", "rate": t, "positives": gen,
                            **kept_impostors(imp_scores, imp_mask, t)}]
        # EER and AUC on a fixed impostor sample (keeps the bootstrap cheap). Each resample draws persons once (as
        # FMR does): a genuine score weighs how often its person was drawn, an impostor score the product of its
        # probe person's and its gallery person's counts. Every
        # resample's curve is computed at once. Both are shares of comparisons and get the exact-binomial floor
        # (never a zero-width interval at perfect separation; see EER_TRIALS_PER_GENUINE).
        pick = rng.choice(len(imp_scores), size=min(EER_IMPOSTOR_SAMPLE, len(imp_scores)), replace=False)
        imp_rows, imp_cols = mask_positions(imp_mask, pick)
        imp_sample = imp_scores[pick]
        eer_boots, auc_boots = [], []
        for w, w_imp in boot.pair_weights(imp_rows, pairs.gallery_persons[imp_cols]):
            low, high, _, area = ver.eer_auc_many(imp_sample, gen, w_imp, w)
            eer_boots.append((low + high) / 2)
            auc_boots.append(area)
        n_cmp = int(imp_mask.sum() + n_probe)
        eer_b = boot.from_resamples(eer_full, np.concatenate(eer_boots), rate=True,
                                    observations=EER_TRIALS_PER_GENUINE * n_probe)
        out.append(MetricRecord(name, cond, "eer", eer_b.value, eer_b.ci_low, eer_b.ci_high, n_cmp, SAFE))
        auc_b = boot.from_resamples(auc_full, np.concatenate(auc_boots), rate=True,
                                    observations=AUC_TRIALS_PER_GENUINE * n_probe)
        out.append(MetricRecord(name, cond, "roc_auc", auc_b.value, auc_b.ci_low, auc_b.ci_high, n_cmp, RISK))
        hits = (np.argmax(s, axis=1) == own).astype(float)
        out.append(MetricRecord.of(name, cond, "rank1", boot.mean(hits, rate=True),
                                   RISK))
        return out

    def _demographics(self, cond, s, gen, imp_mask, pairs, groups, tau, setting, boot,
                      series=None, labelled: dict | None = None) -> list[MetricRecord]:
        """Per-group FMR and FNMR at the demographic threshold and their differentials under ``cond``; each
        group's accepted impostor comparisons (probe row, gallery column) are appended to ``series``. A group the
        run's faces label (``labelled``: attribute -> groups) that has no identity persons (each of its persons has
        one usable image, or none on one side) gets ``group_persons`` 0, so that a rule on the differentials of the
        others says a group has too few persons instead of passing as if it did not exist."""
        out = []
        accepted = (s >= tau) & imp_mask
        for attr, (probe_lab, gal_lab) in groups.items():
            values = sorted(v for v in set(probe_lab) & set(gal_lab) if isinstance(v, str))  # missing: no group
            out += [MetricRecord(self.name, cond, "group_persons", 0, 0, 0, 0, NEUTRAL, attribute=attr, group=v,
                                 setting=setting) for v in sorted((labelled or {}).get(attr, set()) - set(values))]
            if len(values) < 2:
                if len((labelled or {}).get(attr, ())) >= 2:
                    # The faces label groups that cannot be compared (one group or none has identity persons): the
                    # differentials are stored empty, so a rule pooling this attribute with others cannot pass on
                    # the others alone as if it had been judged (a review of the rules).
                    out += [MetricRecord.without_number(self.name, cond, metric, SAFE if metric == "fdr" else RISK,
                                                        attribute=attr, setting=setting)
                            for metric in SUMMARIES]
                continue
            # A group's FMR compares two persons: every resample weighs both by its one draw of persons (as the group's
            # own FMR row), so the differentials over groups vary the gallery's persons too (drawn on the probe side
            # alone, their intervals were a third narrower; a review of the rules). FNMR is genuine
            # comparisons only: per probe row and group, genuine rejections and genuine comparisons, summed over
            # every probe-side person resample at once (resample_sums).
            is_g = {v: probe_lab == v for v in values}
            fmr_sums, accepts = {}, {}
            for v in values:  # one group's matrix at a time: seven age brackets would hold seven at once
                same_v = (gal_lab == v)[None, :] & imp_mask & is_g[v][:, None]  # impostor comparisons within group v
                fmr_sums[v] = (pairs.sum(accepted & same_v), pairs.sum(same_v))
                if series is not None:  # the accepted comparisons' (probe row, gallery column), for the outcomes
                    accepts[v] = np.argwhere(accepted & same_v)
            counts = np.stack([c for v in values for c in ((gen < tau) & is_g[v], is_g[v])], axis=1).astype(float)

            def fnmr_rates(sums):
                return {v: sums[2 * j] / sums[2 * j + 1] if sums[2 * j + 1] else np.nan for j, v in enumerate(values)}

            def fmr_rate(v):
                made, compared = (float(m.sum()) for m in fmr_sums[v])
                return made / compared if compared else np.nan

            full_rates = ({v: fmr_rate(v) for v in values}, fnmr_rates(counts.sum(0)))
            fmr_boots = {v: boot.two_way_rates(*fmr_sums[v]) for v in values}
            boot_rates = [({v: fmr_boots[v][b] for v in values}, fnmr_rates(sums))
                          for b, sums in enumerate(boot.resample_sums(counts))]
            for v in values:
                n = int(is_g[v].sum())
                # A group's rates rest on that group's persons: the expanded percentile and the exact-binomial floor
                # count them (a 5-person group with no errors gets FNMR [0, 0.52], not the whole run's interval).
                persons = len(np.unique(boot.inverse[is_g[v]]))
                fmr_v = boot.two_way(*fmr_sums[v], persons=persons, boots=fmr_boots[v])
                fnmr_v = boot.from_resamples(full_rates[1][v], [r[1][v] for r in boot_rates], rate=True,
                                             persons=persons, observations=n)
                out.append(MetricRecord(self.name, cond, "group_fmr", fmr_v.value, fmr_v.ci_low, fmr_v.ci_high,
                                        int(fmr_sums[v][1].sum()), NEUTRAL, attribute=attr,
                                        group=v, setting=setting))
                out.append(MetricRecord(self.name, cond, "group_fnmr", fnmr_v.value, fnmr_v.ci_low, fnmr_v.ci_high,
                                        n, NEUTRAL, attribute=attr, group=v, setting=setting))
                out.append(MetricRecord(self.name, cond, "group_persons", persons, persons, persons, persons, NEUTRAL,
                                        attribute=attr, group=v, setting=setting))
                # How many independent comparisons the group's FMR is worth (its resamples' spread): its comparisons
                # share persons, so fewer than its person pairs (about half on the sample world). The rules' "too few
                # persons" check counts these where they are known (a review of the statistics: it counted pairs).
                trials = effective_trials(fmr_v.value, fmr_boots[v], float(fmr_sums[v][1].sum()))
                if trials is not None:
                    out.append(MetricRecord(self.name, cond, "group_fmr_trials", trials, trials, trials,
                                            int(fmr_sums[v][1].sum()), NEUTRAL, attribute=attr, group=v,
                                            setting=setting))
                if series is not None:  # FMR compares two persons: the paired comparison resamples both sides
                    series.append({"metric": "group_fmr", "condition": cond, "setting": setting, "attribute": attr,
                                   "group": v, "kind": "pair_share", "accepts": accepts[v]})
            for metric, fn in SUMMARIES.items():
                # A ratio is +inf when one group has no errors and another has some: stored as +inf (the rule
                # engine judges it as the worst case), and resamples where it is infinite stay in its interval.
                est = boot.from_resamples(fn(full_rates), [fn(r) for r in boot_rates], unbounded=metric != "fdr")
                direction = SAFE if metric == "fdr" else RISK
                out.append(MetricRecord.of(self.name, cond, metric, est, direction, attribute=attr, setting=setting))
        return out


def _person_pairs(boot: SubjectBootstrap, own: np.ndarray, n_gallery: int) -> PersonPairs:
    """Person maps of the probe x gallery score matrix, for :meth:`SubjectBootstrap.two_way`.

    Gallery column j is the gallery image of the person whose probes have ``own == j``, so that
    person's position in the bootstrap is the one of any of those probe rows."""
    _, gallery_as_probe_row = np.unique(own, return_index=True)  # own takes every value 0 .. n_gallery - 1
    return PersonPairs(boot, np.arange(len(own)), gallery_as_probe_row)

