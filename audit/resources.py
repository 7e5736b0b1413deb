"""Where the shipped data lives: report templates, rule packs, sample models and their profiles.

An installed wheel carries them as package data under ``audit/_data/<folder>`` (``setup.py`` copies the
top-level ``templates/``, ``rules/``, ``protocols/`` and ``sample_data/`` there at build time). A checkout or an
editable install has no ``_data``; there the top-level folders of the source tree are used.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def _folder(name: str) -> Path:
    packaged = Path(str(resources.files("audit").joinpath("_data", name)))
    if packaged.is_dir():
        return packaged
    # Only a source tree (pyproject.toml beside audit/) counts; never a stray folder in site-packages.
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / name).is_dir():
        return _CHECKOUT / name
    return packaged  # missing: callers' errors name this path


def templates_dir() -> Path:
    """Jinja templates and report.css."""
    return _folder("templates")


def rules_dir() -> Path:
    """The shipped rule packs (``*.yaml``)."""
    return _folder("rules")


def protocols_dir() -> Path:
    """The shipped protocol files (``*.yaml``), e.g. the sample world's."""
    return _folder("protocols")


def sample_models_dir() -> Path:
    """The sample ONNX models with their ``*.profile.yaml``."""
    return _folder("sample_data") / "models"


def cache_dir() -> Path:
    """The user's faceaudit cache: ``$FACEAUDIT_CACHE``, else ``$XDG_CACHE_HOME/faceaudit``, else
    ``~/.cache/faceaudit``. Holds the materialised sample data and the landmark cache; deleting it only
    costs recomputation."""
    import os

    if os.environ.get("FACEAUDIT_CACHE"):
        return Path(os.environ["FACEAUDIT_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "faceaudit"
