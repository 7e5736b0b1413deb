"""Landmark cache: what a detector found in an image, keyed by (image SHA-256, detector key).

Where: one small JSON file per image under ``<cache>/landmarks/<detector>/<aa>/<image-sha256>.json``, with
``<cache>`` the user's faceaudit cache (:func:`audit.resources.cache_dir`: ``$FACEAUDIT_CACHE``, else
``$XDG_CACHE_HOME/faceaudit``, else ``~/.cache/faceaudit``) and ``<detector>`` a hash of the detector's key
(weights SHA-256 plus the settings that change its output).

Why not a store table: detection is a property of the image bytes and the detector, not of an audit, so
the cache serves every store, ``faceaudit prepare`` (which has no store), read-only stores and Ray
workers alike. Why files and not one DuckDB/Parquet file: several processes (a campaign on Ray, a TUI
and a CLI run) may detect at the same time; one file per image needs no lock, each is written to a
``.partial`` sibling and renamed in one step (:mod:`audit.atomic`), so a reader sees the whole entry or
none, and two writers of the same entry write the same bytes. A corrupt or foreign entry, or one whose
detections are malformed (not five points, a non-finite number), is ignored and recomputed. The raw detections (every face with its confidence) are cached, so changing the
confidence threshold needs no new detection.

Privacy: an entry holds face boxes and landmarks of a photo (not the photo). With
``FACEAUDIT_NO_LANDMARK_CACHE=1`` nothing is read from or written to the cache (every run detects again);
deleting ``<cache>/landmarks`` removes every entry and only costs time.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from audit.atomic import write_atomic
from audit.intake.detectors import Detection
from audit.resources import cache_dir

NO_CACHE_ENV = "FACEAUDIT_NO_LANDMARK_CACHE"


def cache_disabled() -> bool:
    """Whether ``FACEAUDIT_NO_LANDMARK_CACHE`` asks for no landmark cache (any value but '', '0', 'false', 'no')."""
    return os.environ.get(NO_CACHE_ENV, "").strip().lower() not in ("", "0", "false", "no")


class LandmarkCache:
    """Per-detector entries; counts its hits and misses (tests and the run's acquisition record read them)."""

    def __init__(self, detector_key: str, root: Path | None = None):
        self.detector_key = detector_key
        digest = hashlib.sha256(detector_key.encode()).hexdigest()[:24]
        self.folder = (root or cache_dir() / "landmarks") / digest
        self.hits = 0
        self.misses = 0
        self.write_errors = 0
        self.enabled = not cache_disabled()
        """False under ``FACEAUDIT_NO_LANDMARK_CACHE=1``: every get misses and nothing is written."""
        self._lock = threading.Lock()

    def _path(self, image_sha256: str) -> Path:
        return self.folder / image_sha256[:2] / f"{image_sha256}.json"

    def get(self, image_sha256: str) -> list[Detection] | None:
        try:
            if not self.enabled:
                raise OSError("landmark cache disabled")
            doc = json.loads(self._path(image_sha256).read_text(encoding="utf-8"))
            if doc.get("detector") != self.detector_key or doc.get("image") != image_sha256:
                raise ValueError("foreign entry")
            faces = [Detection.from_dict(d) for d in doc["faces"]]  # ValueError when malformed
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # AttributeError: not a JSON object
            with self._lock:
                self.misses += 1
            return None
        with self._lock:
            self.hits += 1
        return faces

    def put(self, image_sha256: str, faces: list[Detection]) -> None:
        """Store an entry; a cache that cannot be written (read-only home, full disk) only costs speed."""
        if not self.enabled:
            return
        doc = {"detector": self.detector_key, "image": image_sha256, "faces": [f.to_dict() for f in faces]}
        path = self._path(image_sha256)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(doc, sort_keys=True).encode(), unique=True)
        except OSError:
            with self._lock:
                self.write_errors += 1
