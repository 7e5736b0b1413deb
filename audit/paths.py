"""The folders and files a command names: an output folder made on demand, a file name that replaces
no earlier evidence, and a store that reading commands need to exist."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from audit.errors import ConfigError, StoreError


def out_folder(out_dir: str | Path, create: bool = True) -> Path:
    """``out_dir`` as a folder, created if missing; a one-line :class:`ConfigError` when it cannot be. With
    ``create=False`` only checked: it is a folder one can write in, or its nearest existing parent is (a command
    that writes its output last checks first and creates nothing before it has something to write)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: is a file; give a folder")
    if not create:
        parent = next(p for p in (out_dir.absolute(), *out_dir.absolute().parents) if p.exists())
        if not parent.is_dir():
            raise ConfigError(f"--out {out_dir}: {parent} is a file; give a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"--out {out_dir}: cannot create folder: {parent} is not writable")
        return out_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create folder: {exc.strerror}") from None
    return out_dir


@contextmanager
def claimed_stem(stem: Path, suffixes: list[str], taken: frozenset[str] | set[str] = frozenset()) -> Iterator[Path]:
    """``stem``, else ``stem-2``, ``stem-3``...: the first for which no output file exists yet, claimed.

    Reports are evidence an auditor may already have signed or sent: rendering again never replaces an earlier
    file; the new one gets the next number (and ``wrote ...`` names it). Every output name is created empty at once
    (``O_EXCL``), so two commands rendering at the same moment never pick one name and replace each other's file
    (each said ``wrote`` the same name; a review of the store). The files then replace the claims whole (:mod:`audit.atomic`); a claim still empty when
    the block ends (a file not written after all, or a failure) is removed. A candidate any of whose file names is in
    ``taken`` (names spoken for elsewhere, such as the reports an attestation signs) is passed over."""
    suffixes = list(dict.fromkeys(suffixes))  # a name given twice (--format html,html) is one file, claimed once
    cand, n = stem, 1
    while True:
        made: list[Path] = []
        try:
            if any(cand.name + s in taken for s in suffixes):
                raise FileExistsError
            for s in suffixes:
                path = cand.with_name(cand.name + s)
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                made.append(path)
            break
        except FileExistsError:
            for path in made:
                path.unlink(missing_ok=True)
            n += 1
            cand = stem.with_name(f"{stem.name}-{n}")
        except OSError as exc:
            for path in made:
                path.unlink(missing_ok=True)
            raise ConfigError(f"--out {stem.parent}: cannot write {cand.name + s}: {exc.strerror or exc}") from None
    try:
        yield cand
    finally:
        for path in made:
            if path.exists() and path.stat().st_size == 0:
                path.unlink()


def require_store(db: str | Path) -> None:
    """Reading commands must not create an empty store by accident."""
    if str(db) != ":memory:" and not Path(db).exists():
        raise StoreError(f"{db}: no such database (run an audit first, e.g. 'faceaudit demo')")
