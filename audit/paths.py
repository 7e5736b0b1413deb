"""The folders and files a command names: an output folder made on demand, a file name that replaces
no earlier evidence, and a store that reading commands need to exist."""

from __future__ import annotations

from pathlib import Path

from audit.errors import ConfigError, StoreError


def out_folder(out_dir: str | Path) -> Path:
    """``out_dir`` as a folder, created if missing; a one-line :class:`ConfigError` when it cannot be."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: is a file; give a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create folder: {exc.strerror}") from None
    return out_dir


def free_stem(stem: Path, suffixes: list[str]) -> Path:
    """``stem``, else ``stem-2``, ``stem-3``...: the first for which no output file exists yet.

    Reports are evidence an auditor may already have signed or sent: rendering again never replaces
    an earlier file; the new one gets the next number (and ``wrote ...`` names it)."""
    cand, n = stem, 1
    while any(cand.with_name(cand.name + s).exists() for s in suffixes):
        n += 1
        cand = stem.with_name(f"{stem.name}-{n}")
    return cand


def require_store(db: str | Path) -> None:
    """Reading commands must not create an empty store by accident."""
    if str(db) != ":memory:" and not Path(db).exists():
        raise StoreError(f"{db}: no such database (run an audit first, e.g. 'faceaudit demo')")
