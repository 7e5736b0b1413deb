"""Datasets whose faces a detector finds. :func:`load` reads the dataset as :func:`audit.data.load` does and
attaches the :class:`Finder`, which resolves ``--detector``, keys what the detector gives, and runs it over
the photos (the data floor calls it through :class:`audit.data.loaders.FaceFinder`, never importing intake)."""

from __future__ import annotations

import os
from pathlib import Path

from audit.data import Dataset
from audit.data import load as load_manifest
from audit.intake.acquire import Acquisition, acquire, acquisition_key
from audit.intake.resolve import resolve_detector


class Finder:
    """The face finder :func:`load` attaches to a dataset."""

    def resolve(self, spec: str):
        """The detector ``spec`` names (None for ``none``)."""
        return resolve_detector(spec)

    def key(self, detector, min_confidence: float) -> str:
        """The detector's key plus the threshold: what the aligned faces depend on besides the files."""
        return acquisition_key(detector, min_confidence)

    def acquire(self, dataset: Dataset, detector) -> Acquisition:
        """Detections for every manifest row of ``dataset`` (landmark cache first)."""
        return acquire([Path(p) for p in dataset.manifest["_path"]], dataset.manifest["image"].tolist(),
                       dataset.file_hashes, detector, dataset.min_confidence, workers=min(4, os.cpu_count() or 2))


FINDER = Finder()


def load(path: str | Path, detector: str = "auto", min_confidence: float = 0.9) -> Dataset:
    """Load a dataset (:func:`audit.data.load`) whose faces ``detector`` finds when its manifest has no
    landmarks (``auto``), always (``mtcnn`` or a detector ONNX path) or never (``none``)."""
    dataset = load_manifest(path, detector, min_confidence)
    dataset.finder = FINDER
    return dataset
