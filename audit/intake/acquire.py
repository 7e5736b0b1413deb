"""Acquisition: run a detector over a dataset's photos, pick one face per photo, measure what fails.

For each decodable image the detector's faces come from the landmark cache or a fresh detection. Of
the faces at or above the confidence threshold the largest (box area) is used; a photo with more than
one such face is still used and gets a ``multiple_faces`` data-quality record naming the choice. A photo
with no face becomes ``no_face``; one whose faces all score below the threshold, ``low_confidence``.
Those two are **failures to acquire** (ISO/IEC 19795-1): the FTA rate is their share of the photos
presented to the detector (unreadable files are data problems, counted apart).

:func:`fta_metrics` turns the outcome into metric records (probe ``acquisition``, metric ``fta_rate``)
overall and per group of each attribute, with person-level bootstrap intervals.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from audit.data.groups import group_labels
from audit.data.images import QualityIssue, read_image
from audit.errors import ModelError
from audit.intake.cache import LandmarkCache
from audit.intake.detectors import Detection
from audit.records import FAILURES, MetricRecord



def threshold_text(min_confidence: float) -> str:
    """The threshold as keys and commands write it: lossless (``repr``), so 0.9999991 and 0.9999994 differ."""
    return repr(float(min_confidence))


def acquisition_key(detector, min_confidence: float) -> str:
    """What the aligned faces depend on besides the files: the detector's key and the confidence threshold."""
    return f"{detector.key};min_confidence={threshold_text(min_confidence)}"


@dataclass
class Acquisition:
    """What the detector gave for every manifest row."""

    key: str
    """Detector key plus threshold: what the aligned faces depend on."""
    detector: dict
    min_confidence: float
    landmarks: np.ndarray
    """(N, 5, 2) points of the face used; NaN where none is."""
    attempted: np.ndarray
    """(N,) the image was decoded and shown to the detector."""
    failed: np.ndarray
    """(N,) no face, or only faces below the threshold."""
    confidence: np.ndarray
    """(N,) confidence of the best face (NaN: none found or not attempted)."""
    issues: list[QualityIssue] = field(default_factory=list)
    cache_hits: int = 0
    detected: int = 0
    """Images the detector actually ran on (cache misses)."""
    seconds: float = 0.0

    def summary(self) -> dict:
        att = int(self.attempted.sum())
        return {"detector": self.detector, "key": self.key, "min_confidence": self.min_confidence,
                "attempted": att, "failed": int(self.failed.sum()),
                "fta_rate": float(self.failed.sum() / att) if att else None,
                "cache_hits": self.cache_hits, "detected": self.detected, "seconds": round(self.seconds, 3),
                "records": [{"row": i.row, "image": i.image, "problem": i.problem, "detail": i.detail}
                            for i in self.issues]}


def choose(faces: list[Detection], min_confidence: float) -> tuple[Detection | None, str | None, str]:
    """(face used or None, problem or None, detail) for one photo's detections."""
    if not faces:
        return None, "no_face", "the detector found no face"
    ok = [f for f in faces if f.confidence >= min_confidence]
    if not ok:
        best = max(f.confidence for f in faces)
        return None, "low_confidence", (f"{len(faces)} face(s) found, best confidence {best:.6g} below the "
                                        f"threshold {threshold_text(min_confidence)}")
    chosen = max(ok, key=lambda f: f.area)
    if len(ok) > 1:
        x, y, w, h = (round(v) for v in chosen.box)
        return chosen, "multiple_faces", (f"{len(ok)} faces at or above the threshold; the largest is used "
                                          f"(box x={x} y={y} w={w} h={h}, confidence {chosen.confidence:.6g})")
    return chosen, None, ""


def acquire(paths: list[Path], images: list[str], hashes: list[str | None], detector, min_confidence: float,
            workers: int = 2, cache: LandmarkCache | None = None) -> Acquisition:
    """Detect faces in every decodable image (cached by image and detector) and choose one per photo."""
    t0 = time.perf_counter()
    cache = cache or LandmarkCache(detector.key)
    n = len(paths)

    def one(i: int):
        if hashes[i] is None:
            return None, False
        faces = cache.get(hashes[i])
        if faces is not None:
            return faces, False
        img, issue = read_image(paths[i], i + 1, images[i])
        if issue:  # the photo's own problem: a landmark check on the detector's absent points must not replace it
            return issue, False
        faces = detector.detect(img)
        try:  # exactly what a later run reads back from the cache, so a cold and a warm cache give the same faces
            back = [Detection.from_dict(f.to_dict()) for f in faces]
        except ValueError as exc:  # a box or landmark the detector gave as NaN or inf (or not five points): nothing
            # is cached
            raise ModelError(f"{images[i]} (row {i + 1}): the face detector {detector.name!r} gave an invalid face "
                             f"(a non-finite box or landmark, or not five points: {exc}); it cannot be used on these "
                             "photos") from None
        cache.put(hashes[i], faces)
        return back, True

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(one, range(n)))
    lms = np.full((n, 5, 2), np.nan)
    attempted = np.zeros(n, bool)
    failed = np.zeros(n, bool)
    conf = np.full(n, np.nan)
    issues = []
    for i, (faces, _) in enumerate(results):
        if faces is None:
            continue
        if isinstance(faces, QualityIssue):  # unreadable, too large: no attempt; too small to hold a face: a failure
            issues.append(faces)
            attempted[i] = failed[i] = faces.problem in FAILURES
            continue
        attempted[i] = True
        if faces:
            conf[i] = max(f.confidence for f in faces)
        face, problem, detail = choose(faces, min_confidence)
        if face is not None:
            lms[i] = np.asarray(face.points, float)
        else:
            failed[i] = True
        if problem:
            issues.append(QualityIssue(images[i], i + 1, problem, detail))
    return Acquisition(key=acquisition_key(detector, min_confidence), detector=detector.describe(),
                       min_confidence=min_confidence, landmarks=lms, attempted=attempted, failed=failed,
                       confidence=conf, issues=issues, cache_hits=cache.hits,
                       detected=sum(1 for _, fresh in results if fresh), seconds=time.perf_counter() - t0)


def fta_metrics(acq: Acquisition, manifest: pd.DataFrame, attributes: list[str], n_boot: int, seed: int) -> list:
    """``fta_rate`` overall and per group of each attribute (age in the probes' brackets,
    :mod:`audit.data.groups`), each with a 95% interval.

    The interval resamples persons (a person's photos share lighting, pose and camera), with the
    exact-binomial floor every rate in faceaudit gets (:mod:`audit.metrics.stats`)."""
    from audit.metrics.stats import SubjectBootstrap

    subjects = manifest["subject"].astype(str).to_numpy()
    failed = acq.failed.astype(float)

    def rate(mask: np.ndarray, key: str, **kw):
        idx = np.flatnonzero(mask & acq.attempted)
        if len(idx) == 0:
            return None
        sub = failed[idx]
        boot = SubjectBootstrap(subjects[idx], n_boot, seed, key=f"acquisition:{key}")
        est = boot.estimate(lambda j: float(sub[j].mean()), rate=True)
        return MetricRecord.of("acquisition", "clean", "fta_rate", est, "neutral", **kw)

    out = [rate(np.ones(len(manifest), bool), "all")]
    for attr in attributes:
        groups = group_labels(manifest[attr], attr)
        for g in sorted({v for v in groups if v is not None}):
            out.append(rate((groups == g).to_numpy(), f"{attr}={g}", attribute=attr, group=g))
    return [m for m in out if m is not None]


PER_PERSON = 2
"""At most this many thumbnails of one person in the failure grid."""


def worst_failures(issues: list[QualityIssue], confidence: np.ndarray, subjects, max_n: int = 24,
                   per_person: int = PER_PERSON) -> list[QualityIssue]:
    """The failures to show first: every ``no_face``, then ``low_confidence`` by rising best confidence (manifest
    order among equals), spread across persons: one per person first, then a second, at most ``per_person``."""
    failed = [i for i in issues if i.problem in FAILURES and i.problem != "too_small"]  # (a photo too small to
    # read has no thumbnail: it would take a tile and show nothing)

    def badness(i: QualityIssue):
        c = confidence[i.row - 1]
        return (i.problem != "no_face", c if np.isfinite(c) else -1.0, i.row)

    ranked = sorted(failed, key=badness)
    chosen: set[int] = set()
    taken: dict[str, int] = {}
    for round_ in range(1, per_person + 1):
        for k, i in enumerate(ranked):
            person = str(subjects[i.row - 1])
            if len(chosen) < max_n and k not in chosen and taken.get(person, 0) < round_:
                chosen.add(k)
                taken[person] = taken.get(person, 0) + 1
    return [ranked[k] for k in sorted(chosen)]


def failure_grid(paths: list[Path], issues: list[QualityIssue], confidence: np.ndarray, subjects, tile: int = 72,
                 max_n: int = 24, per_row: int = 8) -> tuple[bytes, list[dict]] | None:
    """A PNG of small thumbnails of the worst failures to acquire (:func:`worst_failures`; whole photo,
    letterboxed), and what each tile is; None when nothing failed."""
    tiles, meta = [], []
    for issue in worst_failures(issues, confidence, subjects, max_n):
        img, problem = read_image(paths[issue.row - 1], issue.row, issue.image)
        if problem:
            continue
        h, w = img.shape[:2]
        f = tile / max(h, w)
        small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        canvas = np.full((tile, tile, 3), 255, np.uint8)
        y, x = (tile - small.shape[0]) // 2, (tile - small.shape[1]) // 2
        canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
        tiles.append(canvas)
        c = confidence[issue.row - 1]
        meta.append({"row": issue.row, "image": issue.image, "problem": issue.problem,
                     "confidence": float(c) if np.isfinite(c) else None})
    if not tiles:
        return None
    while len(tiles) % per_row and len(tiles) > per_row:
        tiles.append(np.full((tile, tile, 3), 255, np.uint8))
    rows = [np.concatenate(tiles[k:k + per_row], axis=1) for k in range(0, len(tiles), per_row)]
    ok, png = cv2.imencode(".png", np.concatenate(rows, axis=0)[..., ::-1])
    return png.tobytes(), meta
