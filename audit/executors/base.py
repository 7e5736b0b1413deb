"""One small interface for running campaign cells, so another engine (Dask, a batch queue) can be
added without touching probes.

A *cell* is an ordinary run: one :class:`~audit.config.AuditConfig`. An executor turns cells into
:class:`CellResult` s as they finish. The local executor runs each cell straight into the store;
distributed executors run a cell into a private scratch store on the worker and hand back the
run's rows as Arrow tables, and only the head process writes the shared DuckDB store (one
writer, no lock contention).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

from audit.config import AuditConfig, result_fields

CellProgress = Callable[[str, float, str], None]
"""progress(cell label, fraction 0..1, message)."""


@dataclass
class Cell:
    label: str
    """``model x dataset`` as shown to the user."""
    config: AuditConfig
    hash: str = ""
    """:func:`config_hash` of the run this cell would store (filled in by the campaign)."""
    inputs: object = field(default=None, repr=False)
    """The run's files as the campaign loaded them to hash them (:class:`audit.run.Inputs`), for an executor
    that runs the cell in this process, so they are loaded (and the dataset hashed) once; None otherwise."""


@dataclass
class CellResult:
    cell: Cell
    run_id: str | None = None
    error: str | None = None
    """One line: why the cell failed (the other cells go on)."""
    tables: dict = field(default_factory=dict)
    """Distributed executors: the run's rows per store table (pyarrow Tables) for the head to write."""


def config_hash(record: dict) -> str:
    """SHA-256 of everything in a run record that changes its numbers (:func:`audit.config.result_fields`)."""
    return hashlib.sha256(json.dumps(result_fields(record), sort_keys=True, default=str).encode()).hexdigest()


class Executor(Protocol):
    name: str
    in_process: bool
    """Whether cells run in this process (and can reuse :attr:`Cell.inputs`)."""

    def run(self, cells: Iterable[Cell], db: str, progress: CellProgress) -> Iterator[CellResult]:
        """Run every cell; yield each result as it arrives. ``cells`` may be a generator that loads each
        cell's inputs as it is reached, so an in-process executor should take them one at a time."""


def stored_runs(db: str) -> set[str]:
    """The ids of the runs the store at ``db`` holds: none when there is no store yet, or when a crash left it
    unreadable (the cell then has no run to hand back)."""
    import os

    from audit.store import Store

    if not os.path.exists(db):
        return set()
    try:
        with Store(db, read_only=True) as store:
            return set(store.runs()["run_id"])
    except Exception:  # noqa: BLE001 - whatever the crash left, reading it must not fail the campaign
        return set()


def cell_error(exc: BaseException) -> str:
    """A failed cell's reason: faceaudit's own one-line message, or any other exception with its type named."""
    from audit.errors import FaceAuditError

    return str(exc) if isinstance(exc, FaceAuditError) else f"{type(exc).__name__}: {exc}"
