"""Cloak-robustness probe: do privacy cloaks stop this model from recognising people, and do they
survive simple processing?

For each protected person a cloak is computed on a surrogate from M of their images (half of them, at most
10, never the gallery's) and added to their *other* images, which become queries. The gallery
holds one clean image of each protected person, never one the cloak was computed from, plus every image of the
unprotected people (distractors).
PSR@k = 1 - share of cloaked queries whose true gallery image ranks in the top k; PSR@tau = 1 -
share accepted against their own gallery image at the system threshold (FMR 1e-3 on clean
impostors; its interval chooses that threshold again on every resample of query and gallery
persons). Surrogates: the target itself through the torch backend (white-box upper bound) and
any ``--surrogate`` models (transfer; with two or more, also one ensemble attack against all of
them). Every method runs in every setting. White-box attacks take plain sign steps until their
objective plateaus; transfer attacks follow the OPOM recipe (momentum, input diversity with
probability 0.5) with a short patience. Each cloak is re-tested after the purifiers. Intervals
resample protected persons.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from audit.conditions.cloaks import BEST, METHODS, Ensemble, apply_cloak, make_cloaks
from audit.conditions.purify import PURIFIERS, purify
from audit.errors import ConfigError
from audit.metrics import verification as ver
from audit.metrics.settings import operating_point
from audit.metrics.stats import Estimate, SubjectBootstrap, mask_positions
from audit.probes.base import Artifact, MetricRecord, ProbeContext, ProbeResult, outcomes_artifact, register
from audit.probes.inversion import image_quality
from audit.seeding import derive_seed
from audit.threads import side_by_side

RISK, SAFE, NEUTRAL = "higher_is_riskier", "lower_is_riskier", "neutral"
SETTINGS = {
    # White-box: plain sign steps (alpha 1) until the objective has not grown by 0.5% for `patience` steps, within
    # the cap `steps`; each person keeps their best perturbation. On the adversarially trained sample model
    # (fr-robust) 16 such steps leave many protected queries recognised (PSR@1 0.72 on average) where the converged
    # attack (about 50 steps) protects 11 of 12 people (0.92; every one before 0.4.0, whose cloaks were also computed
    # from the gallery image); momentum did worse there in white-box (it parks the perturbation in a corner of the
    # budget). Transfer: the OPOM recipe (momentum, input diversity) within `transfer_steps`, with
    # a short patience in every preset: a cloak fitted ever more closely to its surrogate transfers worse (on the
    # sample world PGD transfer PSR@1 fell from 0.79 at patience 4 to 0.38 at patience 8).
    "quick": {"protect": 12, "steps": 100, "patience": 4, "transfer_steps": 100, "transfer_patience": 4},
    "standard": {"protect": 50, "steps": 200, "patience": 8, "transfer_steps": 100, "transfer_patience": 4},
    "thorough": {"protect": 100000, "steps": 400, "patience": 10, "transfer_steps": 200, "transfer_patience": 4}}
DIVERSITY = 0.5  # input-diversity probability of transfer attacks
TOP_K = (1, 5, 10)
SPLITS = 5
"""Splits of the protected persons in halves over which the best cloak's cross-fitted protection is averaged."""
ANY_TRANSFER = "transfer:any"
"""The setting of the best transfer cloak chosen over every surrogate and method."""


def best_cloak(outcomes: dict, persons: np.ndarray, boot: SubjectBootstrap, seed: int) -> Estimate:
    """PSR@1 of the best cloak as a person would choose it: on other persons' results. The protected persons are split
    in halves; the cloak that protected one half best (its queries' mean PSR@1) is judged on the other half, and the
    other way round; averaged over :data:`SPLITS` seeded splits. The interval resamples persons and makes the choice
    again on every resample. The largest of several cloaks' PSR measured on the same persons is biased upwards (five
    methods at a true 0.816 each: the largest averaged 0.892 and passed CLOAK-WHITEBOX-PROTECTS in 45% of 300 simulated
    datasets, one method in 14%, this best in 11%; a review of the probes). ``outcomes``: per cloak, each query's protection
    at rank 1 (1 = protected), queries of ``persons``."""
    names = list(outcomes)
    x = np.stack([np.asarray(outcomes[n], float) for n in names])
    _, inverse = np.unique(persons, return_inverse=True)
    rng = np.random.default_rng(seed)
    halves = [(rng.permutation(inverse.max() + 1) % 2)[inverse] for _ in range(SPLITS)]

    def crossfit(w: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            total = np.zeros(len(w))
            for side in halves:
                got, weight = np.zeros(len(w)), np.zeros(len(w))
                for half in (0, 1):
                    pick, judge = side == half, side != half
                    means = (w[:, pick] @ x[:, pick].T) / w[:, pick].sum(1, keepdims=True)
                    chosen = np.argmax(np.nan_to_num(means, nan=-1.0), 1)  # ties: the first method
                    got += (w[:, judge] * x[chosen][:, judge]).sum(1)
                    weight += w[:, judge].sum(1)
                total += got / weight
            return total / len(halves)

    value = float(crossfit(np.ones((1, x.shape[1])))[0])
    boots = np.concatenate([crossfit(w) for w in boot.image_weights()])
    return boot.from_resamples(value, boots, rate=True)


@dataclass(frozen=True)
class SystemThreshold:
    """The cloak probe's system threshold (FMR 1e-3 on the clean queries' impostor comparisons with the gallery,
    distractors included) and what every resample needs to choose it again: the impostor scores, where each lies,
    and the comparisons per (query person, gallery person). Query persons are resampled by
    the probe's bootstrap and gallery persons, independently, by ``gallery`` (the gallery holds distractors too; the
    protected persons' own gallery entries are drawn apart from their queries, which leaves out the covariance one draw
    of both sides keeps in the identity probe's rates)."""

    tau: float
    setting: str
    scores: np.ndarray
    """Every impostor score, in the row-major order of ``mask``."""
    mask: np.ndarray
    compared: np.ndarray
    gallery: SubjectBootstrap

    def where(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query, gallery person) of the impostor comparisons at positions ``idx`` of ``scores``."""
        rows, cols = mask_positions(self.mask, idx)
        return rows, self.gallery.inverse[cols]

    @classmethod
    def of(cls, s: np.ndarray, mask: np.ndarray, boot: SubjectBootstrap, gallery: SubjectBootstrap,
           setting: str) -> "SystemThreshold":
        imp = s[mask]
        one_q = np.zeros((len(s), boot.n_subjects))
        one_q[np.arange(len(s)), boot.inverse] = 1
        one_g = np.zeros((s.shape[1], gallery.n_subjects))
        one_g[np.arange(s.shape[1]), gallery.inverse] = 1
        return cls(ver.threshold_at_fmr(imp, 1e-3), setting, imp, mask, one_q.T @ mask.astype(float) @ one_g, gallery)


def own_rank(q_emb: np.ndarray, g_emb: np.ndarray, own_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each query's own gallery image among all gallery images (1 = top; ties count against the
    cloak), cosine score against it). PSR@k = share of queries with rank > k."""
    s = ver.cosine_matrix(q_emb, g_emb)
    own = s[np.arange(len(q_emb)), own_col]
    return 1 + (s > own[:, None]).sum(1), own


def protocol(subjects: np.ndarray, n_protect: int, seed: int):
    """(protected persons, source idx (P, M), query idx (P, T), gallery idx (P,), distractor idx)."""
    uniq, counts = np.unique(subjects, return_counts=True)
    want = min(n_protect, int((counts >= 3).sum()))
    # Every protected person gives as many images as the fewest of them has: they are drawn among the persons with
    # the most images that ``want`` persons all have (up to 21: the gallery, 10 sources, 10 queries), so one person
    # with three photos does not cut everyone's cloak to one source image (a review of the probe).
    most = int(np.sort(counts)[::-1][want - 1]) if want else 3
    eligible = uniq[counts >= min(21, max(3, most))]
    rng = np.random.default_rng(derive_seed(seed, "cloak-protect"))
    chosen = np.sort(rng.choice(eligible, size=want, replace=False))
    per = [np.flatnonzero(subjects == s) for s in chosen]
    n = min(len(i) for i in per)
    # The gallery image is held out of the cloak's sources: a universal cloak computed from the very photo it is then
    # matched against pushes the queries away from that photo in particular, which overstated protection (PSR@1 0.70-0.79
    # against 0.64-0.70 with a held-out gallery image, fr-robust at eps 8; a review of the probe).
    m = min(10, n // 2)  # as many sources as before the gallery image was held out; the queries are one fewer
    gallery = np.array([i[0] for i in per])
    sources = np.stack([i[1:1 + m] for i in per])
    queries = np.stack([i[1 + m:n] for i in per])
    distractors = np.flatnonzero(~np.isin(subjects, chosen))
    return chosen, sources, queries, gallery, distractors


@register
class CloakProbe:
    name = "cloak"
    title = "Cloak robustness"
    needs_embedding = True
    white_box = True

    @staticmethod
    def conditions(config) -> list[str]:
        """Cloaks are made and judged on clean faces."""
        return ["clean"]

    def check(self, config, dataset, model) -> None:
        if model.profile.kind != "embedding":
            raise ConfigError(f"cloak: {model.name} is an attributes model; cloaks are tested against FR models")
        counts = dataset.manifest["subject"].value_counts()
        if (counts >= 3).sum() < 2:
            raise ConfigError(f"cloak: needs people with at least three images (cloak sources, gallery, queries); "
                              f"{dataset.source} has {(counts >= 3).sum()}")

    def run(self, ctx: ProbeContext) -> ProbeResult:
        cfg = ctx.config
        st = SETTINGS[cfg.preset]
        subjects = ctx.subjects
        chosen, sources, queries, gallery, distractors = protocol(subjects, st["protect"], ctx.seed)
        # Only the protected people's faces are decoded; `src` / `qry` index them.
        used = np.unique(np.concatenate([sources.ravel(), queries.ravel()]))
        images = ctx.faces.load(used)
        src, qry = np.searchsorted(used, sources), np.searchsorted(used, queries)
        p, m = sources.shape
        t = queries.shape[1]
        result = ProbeResult()
        result.notes.append(f"Cloaks protect {p} people, each made from {m} of their images and tested on {t} others "
                            f"against a gallery with {len(distractors)} distractor images.")
        emb = ctx.embeddings("clean")
        g_idx = np.concatenate([gallery, distractors])
        g_emb = emb[g_idx]
        # System threshold: clean impostor scores of the queries against other people's gallery images.
        q_flat = queries.reshape(-1)
        s_clean = ver.cosine_matrix(emb[q_flat], g_emb)
        own_col = np.repeat(np.arange(p), t)
        mask = np.ones_like(s_clean, dtype=bool)
        mask[np.arange(len(q_flat)), own_col] = False
        # The rule of 30 for that threshold, as the identity probe counts it: PSR@tau at a point the queries cannot
        # back is labelled ';unsupported' (no rule passes on it).
        q_persons, g_persons = np.unique(subjects[q_flat]), np.unique(subjects[g_idx])
        point = ver.operating_points(int(mask.sum()), ver.distinct_person_pairs(q_persons, g_persons), (1e-3,))[0]
        if not point.supported:
            result.notes.append(f"System threshold: {point.explain()}")
        boot = SubjectBootstrap(subjects[q_flat], cfg.setting("bootstrap"), ctx.seed, "cloak")
        system = SystemThreshold.of(s_clean, mask, boot, SubjectBootstrap(
            subjects[g_idx], cfg.setting("bootstrap"), ctx.seed, "cloak-gallery"), operating_point(
            "fmr", 1e-3, not point.supported))
        surrogates = {}
        target = ctx.model.torch()
        if target is None:
            result.notes.append(f"White-box bound missing: {ctx.model.torch_error}")
        else:
            surrogates["white-box"] = (target, False)
        members, skipped = [], []
        for sm in ctx.surrogates:
            b = sm.torch()
            if b is None:
                result.notes.append(f"Surrogate {sm.name} skipped: {sm.torch_error}")
                skipped.append(f"transfer:{sm.name}")
            else:
                surrogates[f"transfer:{sm.name}"] = (b, True)
                members.append((sm.name, b))
        if len(members) >= 2:  # one cloak optimised against every surrogate at once
            surrogates[f"transfer:ensemble({'+'.join(n for n, _ in members)})"] = (
                Ensemble([b for _, b in members]), True)
        clean_queries = images[qry.reshape(-1)]
        series: list[dict] = []  # per-query outcomes for paired comparisons between models
        result.metrics += self._evaluate(ctx, "clean", "none", clean_queries, g_emb, own_col, system, boot, None,
                                         series)
        examples, convergence = {}, []
        if not ctx.surrogates:
            result.notes.append("No transfer setting: no --surrogate model was given, so only the white-box bound "
                                "(cloaks made on the audited model itself) was measured.")
        attacks = [(label, backend, transfer, method, eps) for label, (backend, transfer) in surrogates.items()
                   for method in METHODS for eps in cfg.cloak_eps]

        def attack(job):
            label, backend, transfer, method, eps = job
            recipe = dict(steps=st["transfer_steps"], patience=st["transfer_patience"], momentum=True,
                          diversity=DIVERSITY) if transfer else dict(steps=st["steps"], patience=st["patience"])
            rec: dict = {}
            started = time.perf_counter()
            eta = make_cloaks(backend.embed_tensor, images[qry] if method == "pgd" else images[src], method, eps,
                              seed=derive_seed(ctx.seed, "cloak", label, method, eps), record=rec, **recipe)
            rec["seconds"] = round(time.perf_counter() - started, 3)  # cost, for strength-vs-cost
            rec["precision"] = ctx.model.precision  # every model of a run shares the run's attack precision
            return eta, rec

        # The attacks run side by side on the CPU (each single-threaded, seeded by its own key); the slowest
        # (transfer, with an extra forward pass per step) are handed out first.
        order = sorted(range(len(attacks)), key=lambda i: not attacks[i][2])
        on_cpu = all(str(b.device) == "cpu" for b, _ in surrogates.values())
        made = {}
        for k, (i, res) in enumerate(zip(order, side_by_side(attack, [attacks[i] for i in order],
                                                             device="cpu" if on_cpu else "cuda")), 1):
            made[i] = res
            label, _, _, method, eps = attacks[i]
            ctx.progress(0.8 * k / len(attacks), f"cloak made: {label} {method} eps {eps:g}")
        for i, (label, _, _, method, eps) in enumerate(attacks):
            eta, rec = made[i]
            cloaked = apply_cloak(images[qry], eta if method == "pgd" else eta[:, None]).reshape(-1, *images.shape[1:])
            convergence.append({"setting": label, "method": method, "eps": eps, **rec})
            cond = f"cloak:{method}@{eps:g}"
            result.metrics += self._evaluate(ctx, cond, label, cloaked, g_emb, own_col, system, boot, clean_queries,
                                             series)
            if label == "white-box" and method == "opom-affine":
                examples = {"clean": clean_queries[:4], "cloaked": cloaked[:4]}
            ctx.progress(0.8 + 0.2 * (i + 1) / len(attacks), f"cloak tested: {label} {method} eps {eps:g}")
        result.metrics += self._best(series, subjects[q_flat], boot, cfg.cloak_eps, ctx.seed,
                                     every_surrogate=not skipped)
        # Settings not tried (no torch backend, or one that failed parity) are stored without a number, so that the
        # best-cloak rules say a fail is not excluded instead of "no result matched"; transfer:any too once a
        # surrogate given was not tried (the best over the others is not the best over every one given).
        not_tried = [label for label in ("white-box", *skipped) if label not in surrogates]
        if skipped:
            not_tried.append(ANY_TRANSFER)
        result.metrics += [record for label in not_tried for record in self._not_tried(label, cfg.cloak_eps)]
        if examples:
            result.artifacts.append(self._examples(examples))
        result.artifacts.append(Artifact.json(self.name, "convergence.json", convergence))
        result.artifacts.append(outcomes_artifact(self.name, ctx.faces.rows[q_flat], subjects[q_flat], series))
        return result

    def _not_tried(self, setting: str, budgets) -> list[MetricRecord]:
        """PSR@1 rows without a number for a cloak setting that could not be made: each method, purified or not, and
        the best, at every budget (``transfer:any`` has only its best)."""
        purified = ["", *(f"+purify:{p}" for p in PURIFIERS)]
        conds = [] if setting == ANY_TRANSFER else [f"cloak:{m}@{eps:g}{p}" for eps in budgets for m in METHODS
                                                    for p in purified]
        conds += [f"cloak:{BEST}@{eps:g}" for eps in budgets]
        return [MetricRecord.without_number(self.name, cond, "psr_at_1", SAFE, setting=setting) for cond in conds]

    def _best(self, series: list[dict], persons: np.ndarray, boot: SubjectBootstrap, budgets, seed: int,
              every_surrogate: bool = True) -> list:
        """``cloak:best@<eps>`` rows (:func:`best_cloak`): per setting, the best of its methods; over every transfer
        setting, the best of every surrogate's methods (``transfer:any``: a person cannot know which public model's
        cloaks transfer to this one, but can learn it from other people's results), only when ``every_surrogate``
        given was tried."""
        out = []
        for eps in budgets:
            cond = {f"cloak:{method}@{eps:g}": method for method in METHODS}
            found: dict = {}
            for s in series:
                if s["metric"] == "psr_at_1" and s["condition"] in cond:
                    found.setdefault(s["setting"], {})[cond[s["condition"]]] = s["values"]
            transfer = {(label, m): v for label, by in found.items() if label.startswith("transfer:")
                        for m, v in by.items()}
            if transfer and every_surrogate:
                found[ANY_TRANSFER] = transfer
            for label, outcomes in found.items():
                # one split seed per budget: transfer:any over a lone surrogate is that surrogate's row, number for number
                est = best_cloak(outcomes, persons, boot, derive_seed(seed, "cloak-best", eps))
                out.append(MetricRecord.of(self.name, f"cloak:{BEST}@{eps:g}", "psr_at_1", est, SAFE, setting=label))
        return out

    def _evaluate(self, ctx, cond, setting, queries, g_emb, own_col, system, boot, clean,
                  series=None) -> list[MetricRecord]:
        """PSR@k and PSR@tau of ``queries`` (and after each purifier; PSR@tau at the ``system`` threshold, its interval
        choosing that threshold again on every resample), image quality against ``clean``; each query's protection at
        rank 1 is appended to ``series`` (outcomes for paired comparisons)."""
        out = []
        versions = {cond: queries} | {f"{cond}+purify:{pname}": purify(queries, pname) for pname in PURIFIERS}
        for name, q in versions.items():
            rank, own = own_rank(ctx.model.infer.embed(q), g_emb, own_col)
            for k in TOP_K:
                hit = (rank <= k).astype(float)
                est = boot.mean(1 - hit, rate=True)
                if k == 1 and series is not None:
                    series.append({"metric": "psr_at_1", "condition": name, "setting": setting, "attribute": "",
                                   "kind": "share", "values": 1 - hit})
                out.append(MetricRecord.of(self.name, name, f"psr_at_{k}", est, SAFE, setting=setting))
            accepted = boot.share_at_own_threshold(own, system.scores, system.where, system.compared, 1e-3,
                                                   gallery=system.gallery)
            est = boot.from_resamples(float(np.mean(own < system.tau)), 1 - accepted, rate=True)
            out.append(MetricRecord.of(self.name, name, "psr_at_tau", est, SAFE, setting=f"{setting};{system.setting}"))
        if clean is not None:
            ssim, psnr = image_quality(queries, clean)
            linf = np.abs(queries.astype(int) - clean.astype(int)).reshape(len(queries), -1).max(1).astype(float)
            for metric, arr in (("ssim", ssim), ("psnr", psnr), ("linf", linf)):
                est = boot.mean(arr)
                out.append(MetricRecord.of(self.name, cond, metric, est, NEUTRAL, setting=setting))
        return out

    @staticmethod
    def _examples(ex: dict) -> Artifact:
        import cv2

        clean, cloaked = ex["clean"], ex["cloaked"]
        diff = cloaked.astype(int) - clean.astype(int)
        amp = np.clip(127 + diff * 10, 0, 255).astype(np.uint8)
        grid = np.concatenate([np.concatenate(list(r), 1) for r in (clean, cloaked, amp)], 0)
        ok, png = cv2.imencode(".png", grid[..., ::-1])
        return Artifact("cloak", "examples.png", "image/png", png.tobytes(),
                        {"rows": ["clean", "cloaked (white-box OPOM affine)", "perturbation x10"]})
