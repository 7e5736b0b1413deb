"""Writing files so that nobody ever sees half of one.

Everything faceaudit writes for a person to keep (reports, exports, attestations, profiles)
goes to ``NAME.partial`` first and is renamed over ``NAME`` only when complete; on any failure
(disk full, Ctrl-C, a renderer error) the ``.partial`` is removed.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: Path, unique: bool = False) -> Iterator[Path]:
    """Yield the temporary sibling to write; it replaces ``path`` in one rename on success.

    ``unique`` gives the temporary file a random name, for files that several processes or threads may
    write at once (cache entries): each writes its own ``.partial`` and the last rename wins whole."""
    tmp = path.with_name(path.name + (f".{uuid.uuid4().hex}" if unique else "") + ".partial")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes, unique: bool = False) -> Path:
    with atomic_path(path, unique) as tmp:
        tmp.write_bytes(data)
    return path
