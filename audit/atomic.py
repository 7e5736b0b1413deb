"""Writing files so that nobody ever sees half of one.

Everything faceaudit writes for a person to keep (reports, exports, attestations, profiles)
goes to ``NAME.partial`` first and is renamed over ``NAME`` only when complete; on any failure
(disk full, Ctrl-C, a renderer error) the ``.partial`` is removed.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield the temporary sibling to write; it replaces ``path`` in one rename on success."""
    tmp = path.with_name(path.name + ".partial")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
