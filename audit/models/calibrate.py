"""The preprocessing check: does the model do its own job with the profile in use?

A wrong colour order, normalisation or input size makes a model look weaker than it is, and an audit of
a weakened model understates risk. Before any probe, on a small slice of persons, the model's own
task is measured with the profile in use and with the usual alternatives (RGB/BGR x {+-1 (127.5),
0-1, ImageNet mean/std, Caffe mean with std 1, raw 0-255}, and, when the graph leaves the input's height and
width open, the usual sizes :data:`SIZES`): for face-recognition models the
genuine-vs-impostor ROC AUC and TAR at FMR 1e-2; for attribute models each labelled head's
balanced accuracy (or, for regression, the share of age error removed against the median).

A candidate is *clearly better* when (a) it makes the model work (AUC >= 0.8, or mean head score
>= 0.3), (b) its score beats the profile in use by at least ``MARGIN`` and (c) the lower end of
the 95% person-bootstrap interval of the difference is above zero. Then the run stops with a
one-line message naming the better setting, unless the user accepts the profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audit.metrics import verification as ver
from audit.models.backends import NonFiniteOutput, preprocess
from audit.models.profile import Profile
from audit.seeding import rng_for

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
NORMALISATIONS = {  # name -> (mean, std) in RGB order on the 0-255 scale
    "pm1": ((127.5,) * 3, (127.5,) * 3),
    "unit": ((0.0,) * 3, (255.0,) * 3),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "caffe": (IMAGENET_MEAN, (1.0,) * 3),
    "raw": ((0.0,) * 3, (1.0,) * 3),
}
MARGIN = 0.02
WORKS = {"embedding": 0.8, "attributes": 0.3}
"""Score at which a candidate makes the model do its job at all (AUC; mean head score)."""
MAX_PERSONS, MAX_IMAGES = 100, 4


SIZES = ((112, 112), (112, 96), (128, 128), (160, 160), (224, 224))
"""Usual face-recognition input sizes (H, W), tried when the graph leaves its input's height and width open (a
model trained at 112 and fed 128 still runs, weaker: an audit of it understates risk)."""


@dataclass(frozen=True)
class Candidate:
    label: str
    color: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    in_use: bool = False
    size: tuple[int, int] | None = None
    """(H, W) when it differs from the profile's (the aligned faces resized to it; the template scales with it)."""

    def profile(self, base: Profile) -> Profile:
        return base.model_copy(update={"input": base.input.model_copy(
            update={"color": self.color, "mean": self.mean, "std": self.std, **({"size": self.size} if self.size
                                                                                  else {})})})

    def describe(self) -> str:
        m = ", ".join(f"{v:g}" for v in self.mean)
        s = ", ".join(f"{v:g}" for v in self.std)
        return f"color {self.color}, mean [{m}], std [{s}]" + (f", size {self.size[0]}x{self.size[1]}" if self.size
                                                                 else "")


def candidates(profile: Profile, free_size: bool = False) -> list[Candidate]:
    """The profile in use first, then every usual alternative that differs from it; with ``free_size`` (the graph
    leaves the input's height and width open) also the usual sizes with the colour and normalisation in use."""
    spec = profile.input
    out = [Candidate("in use", spec.color, tuple(spec.mean), tuple(spec.std), in_use=True)]
    for color in ("RGB", "BGR"):
        for name, (mean, std) in NORMALISATIONS.items():
            # mean/std are given in the model's colour order
            mean_c, std_c = (mean, std) if color == "RGB" else (mean[::-1], std[::-1])
            c = Candidate(f"{color} {name}", color, tuple(mean_c), tuple(std_c))
            if not any(_same(c, o) for o in out):
                out.append(c)
    if free_size:
        out += [Candidate(f"size {h}x{w}", spec.color, tuple(spec.mean), tuple(spec.std), size=(h, w))
                for h, w in SIZES if (h, w) != tuple(spec.size)]
    return out


def _same(a: Candidate, b: Candidate) -> bool:
    return a.color == b.color and np.allclose(a.mean, b.mean) and np.allclose(a.std, b.std) and a.size == b.size


def free_size(backend, profile: Profile) -> bool:
    """Whether the model's graph leaves its input's height and width open (then the profile's size is a claim the
    graph does not check)."""
    info = getattr(backend, "info", None)
    inp = info.input(profile.input.name) if info is not None else None
    if inp is None or len(inp.shape) != 4:
        return False
    axes = (2, 3) if profile.input.layout == "NCHW" else (1, 2)
    return not all(isinstance(inp.shape[a], int) for a in axes)


def _resized(images: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Aligned faces at another (H, W): the template scales with the size, so resizing a face aligned at one size
    gives (up to interpolation) the face aligned at the other."""
    if size is None or tuple(images.shape[1:3]) == tuple(size):
        return images
    import cv2

    h, w = size
    interp = cv2.INTER_AREA if h < images.shape[1] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(im, (w, h), interpolation=interp) for im in images]) if len(images) else \
        np.zeros((0, h, w, 3), images.dtype)


@dataclass
class Check:
    """What the preprocessing check measured (stored with the run as ``preprocessing.json``)."""

    kind: str
    measure: str
    persons: int
    images: int
    scores: list[dict] = field(default_factory=list)
    """Per candidate: label, setting, score (and AUC / TAR for FR models), ranked best first."""
    better: dict | None = None
    """The clearly better candidate with the difference's interval, or None."""
    note: str = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "measure": self.measure, "persons": self.persons, "images": self.images,
                "scores": self.scores, "better": self.better, "note": self.note}

    def message(self, model_name: str) -> str:
        b, cur = self.better, next(s for s in self.scores if s["in_use"])
        return (f"{model_name}: the profile in use ({cur['setting']}) looks wrong: on {self.persons} people its "
                f"{self.measure} is {cur['score']:.3f}, with {b['setting']} it is {b['score']:.3f} (difference "
                f"{b['diff']:.3f}, 95% CI [{b['ci_low']:.3f}, {b['ci_high']:.3f}]). Fix the profile ('faceaudit "
                "inspect MODEL --data DATA --calibrate --write-profile'), or pass --accept-profile to audit as is")


def run_check(model, dataset, faces, seed: int) -> Check:
    """The check for a loaded model on a dataset's aligned faces (the slice is drawn from ``faces``)."""
    subjects = dataset.manifest["subject"].to_numpy()[faces.rows]
    labels = {a: dataset.manifest[a].to_numpy()[faces.rows] for a in dataset.attributes}
    images = dataset.manifest["image"].to_numpy()[faces.rows]
    return check(model.infer, model.profile, faces.load, subjects, labels, seed, names=lambda i: images[i])


def _slice(subjects: np.ndarray, seed: int) -> np.ndarray:
    """Up to MAX_PERSONS persons with two or more images, up to MAX_IMAGES each (seeded)."""
    rng = rng_for(seed, "preprocessing-check")
    uniq, counts = np.unique(subjects, return_counts=True)
    eligible = uniq[counts >= 2]
    if len(eligible) > MAX_PERSONS:
        eligible = rng.choice(eligible, MAX_PERSONS, replace=False)
    idx = [np.flatnonzero(subjects == s)[:MAX_IMAGES] for s in np.sort(eligible)]
    return np.concatenate(idx) if idx else np.zeros(0, int)


def _fr_scores(emb: np.ndarray, subj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = ver.cosine_matrix(emb, emb)
    iu = np.triu_indices(len(subj), 1)
    same = subj[iu[0]] == subj[iu[1]]
    return s[iu][~same], s[iu][same]


def _tar(neg: np.ndarray, pos: np.ndarray, fmr: float = 1e-2) -> float:
    return float(np.mean(pos >= ver.threshold_at_fmr(neg, fmr))) if len(neg) and len(pos) else float("nan")


def check(backend, profile: Profile, load, subjects: np.ndarray, labels: dict[str, np.ndarray],
          seed: int, n_boot: int = 200, names=None) -> Check:
    """Run the check; ``load`` maps positions to aligned faces (only the slice is decoded), ``labels`` maps
    attribute names to per-image values (for attribute models), ``names`` (optional) positions to image files, for
    an error that names the photo a model gave no number for."""
    from audit.data import is_regression

    idx = _slice(np.asarray(subjects), seed)
    subj = np.asarray(subjects)[idx]
    kind = profile.kind
    measure = "TAR at FMR 1e-2" if kind == "embedding" else "mean head score"
    result = Check(kind, measure, int(len(np.unique(subj))), int(len(idx)))
    if len(np.unique(subj)) < 5:
        result.note = "too few people with two or more images for the preprocessing check"
        return result
    heads = [h for h in profile.heads if h.attribute in labels] if kind == "attributes" else []
    if kind == "attributes" and not heads:
        result.note = "no labelled attribute for the model's heads: the preprocessing check cannot measure it"
        return result
    per_cand = []
    images = load(idx)
    for cand in candidates(profile, free_size(backend, profile)):
        prof = cand.profile(profile)
        try:
            outs = backend.run_preprocessed(preprocess(_resized(images, cand.size), prof))
        except NonFiniteOutput as exc:
            if cand.size is not None:
                continue
            raise (exc.naming(lambda i: names(int(idx[i])), f" (preprocessing check, {cand.describe()})") if names
                   else exc) from None
        except Exception:  # noqa: BLE001 - a size the graph cannot run after all (a flattened layer): not a candidate
            if cand.size is None:
                raise
            continue
        if kind == "embedding":
            emb = outs[profile.embedding_output].reshape(len(idx), -1)
            neg, pos = _fr_scores(emb, subj)
            rec = {"auc": ver.auc(neg, pos), "tar_at_fmr_1e-2": _tar(neg, pos)}
            rec["score"] = rec["tar_at_fmr_1e-2"]
            works = rec["auc"]
            stat_input = emb
        else:
            from audit.models.backends import interpret_heads

            preds = interpret_heads(prof, outs)
            hits = {}
            for h in heads:
                truth = labels[h.attribute][idx]
                if h.type == "regression" or is_regression(h.attribute):
                    t = truth.astype(float)
                    err, base = np.abs(preds[h.attribute].reshape(-1) - t), np.abs(t - np.median(t))
                    hits[h.attribute] = ("regression", err, base)
                else:
                    guess = np.asarray(h.labels)[preds[h.attribute].argmax(1)]
                    hits[h.attribute] = ("categorical", (guess == truth.astype(str)).astype(float), truth.astype(str))
            rec = {"heads": {a: _head_score(v, np.arange(len(idx))) for a, v in hits.items()}}
            rec["score"] = float(np.mean(list(rec["heads"].values())))
            works = rec["score"]
            stat_input = hits
        per_cand.append((cand, rec, works, stat_input))
    ranked = sorted(per_cand, key=lambda c: (-np.nan_to_num(c[1]["score"], nan=-1), not c[0].in_use))
    result.scores = [{"label": c.label, "setting": c.describe(), "in_use": c.in_use, "color": c.color,
                      "mean": list(c.mean), "std": list(c.std), **({"size": list(c.size)} if c.size else {}), **r}
                     for c, r, _, _ in ranked]
    best, cur = ranked[0], next(c for c in per_cand if c[0].in_use)
    if not best[0].in_use and best[2] >= WORKS[kind] and best[1]["score"] - cur[1]["score"] >= MARGIN:
        lo, hi = _diff_interval(kind, best[3], cur[3], subj, seed, n_boot)
        if lo > 0:
            result.better = {"label": best[0].label, "setting": best[0].describe(), "score": best[1]["score"],
                             "diff": best[1]["score"] - cur[1]["score"], "ci_low": lo, "ci_high": hi,
                             "color": best[0].color, "mean": list(best[0].mean), "std": list(best[0].std),
                             **({"size": list(best[0].size)} if best[0].size else {})}
    if best[2] < WORKS[kind]:
        result.note = ("no candidate makes the model do its job (best "
                       f"{'AUC' if kind == 'embedding' else 'score'} {best[2]:.3f}): the check cannot tell a wrong "
                       "profile from a weak model")
    return result


def _head_score(v, idx) -> float:
    kind, a, b = v
    if kind == "regression":
        base = float(np.mean(b[idx]))
        # floor at -1: a hopeless setting is hopeless, and its size must not swamp the other heads
        return max(-1.0, 1 - float(np.mean(a[idx])) / base) if base > 0 else float("nan")
    labels = np.unique(b[idx])
    return float(np.mean([np.mean(a[idx][b[idx] == c]) for c in labels]))  # balanced accuracy


def _diff_interval(kind, best, cur, subj, seed, n_boot) -> tuple[float, float]:
    """95% interval of (best - in use) by half-sampling persons (no person twice, so no image is ever an
    impostor of its own copy); deviations are scaled by 1/sqrt(2) to the full slice's size."""
    rng = rng_for(seed, "preprocessing-check-boot")
    uniq = np.unique(subj)

    def diff(idx):
        if kind == "embedding":
            return _tar(*_fr_scores(best[idx], subj[idx])) - _tar(*_fr_scores(cur[idx], subj[idx]))
        return float(np.mean([_head_score(best[a], idx) - _head_score(cur[a], idx) for a in best]))

    full = diff(np.arange(len(subj)))
    devs = []
    for _ in range(n_boot):
        half = rng.choice(uniq, max(2, len(uniq) // 2), replace=False)
        devs.append(diff(np.flatnonzero(np.isin(subj, half))) - full)
    lo, hi = np.nanquantile(np.asarray(devs) / np.sqrt(2), [0.025, 0.975])
    return float(full + lo), float(full + hi)
