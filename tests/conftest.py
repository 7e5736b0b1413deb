"""Shared fixtures: tiny ONNX models, a small synthetic dataset, the sample models."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.synth import Recipe, materialise
from tests.builders import make_onnx

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MODELS = ROOT / "sample_data" / "models"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Keep `--data sample` materialisations out of the user's ~/.cache during tests.
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    return make_onnx(tmp_path / "tiny.onnx")


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    """40 synthetic people x 4 images (eval split), materialised once per session."""
    folder, _, _ = materialise(tmp_path_factory.mktemp("data") / "small", Recipe(people=40, images=4), workers=1)
    return folder


@pytest.fixture(scope="session")
def probe_data(tmp_path_factory) -> Path:
    """The default evaluation people (300, seed 0) with 4 images each: known-answer leakage/identity tests."""
    folder, _, _ = materialise(tmp_path_factory.mktemp("data") / "probe", Recipe(people=300, images=4), workers=2)
    return folder


@pytest.fixture(scope="session")
def sample_model():
    def get(name: str) -> Path:
        return SAMPLE_MODELS / f"{name}.onnx"
    return get
