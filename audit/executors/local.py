"""Cells one after another in this process, each written straight into the store."""

from __future__ import annotations

import os
from typing import Iterable, Iterator

from audit.errors import FaceAuditError
from audit.executors.base import Cell, CellProgress, CellResult
from audit.run import Cancelled, run_audit


class LocalExecutor:
    name = "local"
    in_process = True

    def run(self, cells: Iterable[Cell], db: str, progress: CellProgress) -> Iterator[CellResult]:
        """A cell that fails, whatever the exception, is that cell's failure (with the run it stored, if it got as
        far as creating one) and the next cell runs, as with Ray; Ctrl-C or a cancel (:class:`Cancelled`) ends the
        campaign: the cell's run is stored ``cancelled`` (``--resume`` finishes it) and no further cell starts."""
        for cell in cells:
            inputs, cell.inputs = cell.inputs, None  # held for this cell's run only
            before = _run_ids(db)
            try:
                run_id = run_audit(cell.config, db,
                                   lambda probe, f, m, _c=cell.label: progress(_c, f, f"{probe}: {m}"),
                                   inputs=inputs)
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - one cell's crash is that cell's failure, not the campaign's
                error = str(exc) if isinstance(exc, FaceAuditError) else f"{type(exc).__name__}: {exc}"
                new = _run_ids(db) - before
                yield CellResult(cell, run_id=new.pop() if len(new) == 1 else None, error=error)
                continue
            yield CellResult(cell, run_id=run_id)


def _run_ids(db: str) -> set[str]:
    """The ids of the runs the store holds (none when there is no store yet or it cannot be read)."""
    from audit.store import Store

    if not os.path.exists(db):
        return set()
    try:
        with Store(db, read_only=True) as store:
            return set(store.runs()["run_id"])
    except Exception:  # noqa: BLE001 - a store the crash left unreadable: the cell has no run to hand back
        return set()
