"""Evidence about a stored run, as the commands ask for it: the results export and the gate that judges a run
without writing to the store (signing a run and its reports: :mod:`audit.report.signing`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from audit.atomic import write_atomic
from audit.evidence import attest, export, gate
from audit.paths import claimed_stem, out_folder, require_store
from audit.rules.apply import judge_stored, run_packs
from audit.rules.engine import attributes_unread, load_packs
from audit.store import Store


def export_run(run_ref: str, db: str | Path, out_dir: str | Path, formats: list[str] | None = None) -> list[Path]:
    """Write the run's results as JSON (every metric, finding, config, seed, hash; see
    ``audit/evidence/results.schema.json``) and/or the metrics table as Parquet."""
    formats = export.check_formats(["json"] if formats is None else formats)  # '--format ""' is no format
    require_store(db)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        out_dir = out_folder(out_dir)  # once the store and the run are known good: a refusal leaves no folder
        written = []
        if "json" in formats:
            data = export.dumps(export.results_document(store, run_id))
            with claimed_stem(out_dir / f"results-{run_id}", [".json"]) as stem:  # never replace a file already sent
                written.append(write_atomic(stem.with_name(stem.name + ".json"), data))
        if "parquet" in formats:
            with claimed_stem(out_dir / f"metrics-{run_id}", [".parquet"]) as stem:
                written.append(export.write_parquet(store.metrics(run_id), stem.with_name(stem.name + ".parquet")))
    return written


def require_signable(run_ref: str, db: str | Path, packs: list[str] | None = None) -> None:
    """Refuse, before anything is written, to sign a run that is incomplete or was never judged (``packs``: judged
    by these packs, in memory, as ``report --pack`` is about to store them)."""
    require_store(db)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        run = store.run(run_id)
        findings = (pd.concat(judge_stored(store, run_id, run_packs(run, packs)), ignore_index=True) if packs
                    else store.findings(run_id))
    attest.require_signable(run, findings)


def gate_run(run_ref: str, db: str | Path, packs: list[str] | None = None, fail_on: str = "fail",
             junit: str | Path | None = None):
    """Judge a stored run with rule packs (default: every shipped pack, or the packs the run's protocol pins, as
    ``run`` and ``report`` judge it) without writing to the store; ``.exit_code`` is 1 when a finding at or above
    ``fail_on`` exists. Optionally writes JUnit XML."""
    if packs:
        load_packs(packs)  # a bad pack is named before the store is read
    require_store(db)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        run = store.run(run_id)
        loaded = run_packs(run, packs)
        findings = pd.concat(judge_stored(store, run_id, loaded), ignore_index=True)
        unread = tuple(attributes_unread(loaded, store.metrics(run_id)))
    result = replace(gate.judge(findings, fail_on, run), unread=unread)
    if junit:
        gate.write_junit(result, run, Path(junit))
    return result
