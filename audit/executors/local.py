"""Cells one after another in this process, each written straight into the store."""

from __future__ import annotations

from typing import Iterable, Iterator

from audit.executors.base import Cell, CellProgress, CellResult, cell_error, stored_runs
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
            before = stored_runs(db)
            try:
                run_id = run_audit(cell.config, db,
                                   lambda probe, f, m, _c=cell.label: progress(_c, f, f"{probe}: {m}"),
                                   inputs=inputs)
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - one cell's crash is that cell's failure, not the campaign's
                new = stored_runs(db) - before
                yield CellResult(cell, run_id=new.pop() if len(new) == 1 else None, error=cell_error(exc))
                continue
            yield CellResult(cell, run_id=run_id)
