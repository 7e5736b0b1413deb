"""Cells one after another in this process, each written straight into the store."""

from __future__ import annotations

from typing import Iterable, Iterator

from audit.errors import FaceAuditError
from audit.executors.base import Cell, CellProgress, CellResult
from audit.run import run_audit


class LocalExecutor:
    name = "local"
    in_process = True

    def run(self, cells: Iterable[Cell], db: str, progress: CellProgress) -> Iterator[CellResult]:
        for cell in cells:
            inputs, cell.inputs = cell.inputs, None  # held for this cell's run only
            try:
                run_id = run_audit(cell.config, db,
                                   lambda probe, f, m, _c=cell.label: progress(_c, f, f"{probe}: {m}"),
                                   inputs=inputs)
                yield CellResult(cell, run_id=run_id)
            except FaceAuditError as exc:
                yield CellResult(cell, error=str(exc))
