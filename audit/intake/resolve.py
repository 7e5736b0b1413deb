"""Which detector ``--detector`` names, and the registry of detector ONNX formats.

A detector profile's ``format`` picks the class that reads the ONNX file. The formats are registered
here, above the files that define them, so ``detectors.py`` (the RetinaFace reader every format builds
on) and ``scrfd.py`` never import each other; a new format is one class and one line in :data:`FORMATS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from audit.errors import ConfigError
from audit.intake.detectors import MtcnnDetector, OnnxDetector
from audit.intake.scrfd import ScrfdDetector
from audit.models.profile import load_profile, profile_path

FORMATS: dict[str, type[OnnxDetector]] = {"retinaface": OnnxDetector, "scrfd": ScrfdDetector}
"""Detector ONNX formats by the ``format`` a detector profile names."""


class DetectorFormat(BaseModel):
    """The fields of a detector profile that choose how the rest is read."""

    model_config = ConfigDict(extra="ignore")
    kind: Literal["detector"]
    format: Literal["retinaface", "scrfd"]


def open_onnx_detector(path: Path) -> OnnxDetector:
    """The detector for ``path`` in the format its profile names (a missing profile is reported by the
    detector itself, after the ONNX file is checked)."""
    prof_file = profile_path(path)
    fmt = load_profile(prof_file, DetectorFormat).format if prof_file.is_file() else "retinaface"
    return FORMATS[fmt](path)


def resolve_detector(spec: str):
    """The detector named by ``--detector``: ``mtcnn`` or a path to an ONNX file with its profile;
    ``auto`` and ``none`` are decided by the dataset (see :mod:`audit.intake.acquire`)."""
    if spec == "mtcnn" or spec == "auto":
        return MtcnnDetector()
    if spec == "none":
        return None
    path = Path(spec)
    if path.suffix.lower() != ".onnx":
        raise ConfigError(f"--detector: expected auto, none, mtcnn or a detector .onnx file, got {spec!r}")
    if not path.is_file():
        raise ConfigError(f"--detector {spec}: no such file")
    return open_onnx_detector(path)
