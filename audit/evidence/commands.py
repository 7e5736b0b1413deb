"""Evidence about a stored run, as the commands ask for it: the results export, a signed attestation,
and the gate that judges a run without writing to the store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from audit.atomic import write_atomic
from audit.errors import ConfigError
from audit.evidence import attest, export, gate, shown
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


def attest_run(run_ref: str, db: str | Path, key: str | Path, out_dir: str | Path, signer: str | None = None,
               reports: list[Path] | None = None) -> list[Path]:
    """Sign an in-toto statement about a stored run: subjects are the model, the dataset, the results
    JSON (written beside the bundle) and each given report file. Returns [results JSON, bundle]."""
    sig = attest.Signer.load(key, signer)
    reports = [Path(r) for r in reports or []]
    by_name: dict[str, Path] = {}
    for r in reports:
        if r.is_dir():
            raise ConfigError(f"--report {r}: is a folder; give each report file")
        if not r.is_file():
            raise ConfigError(f"--report {r}: no such file")
        # A subject is named by the file's name, and verify looks for it by that name beside the bundle: two files
        # of one name could not both be put there, and one of them would stand for both.
        other = by_name.setdefault(r.name, r)
        if other is not r:
            if other.resolve() == r.resolve():
                raise ConfigError(f"--report {r}: given twice; give each report once")
            raise ConfigError(f"--report {other} and --report {r}: two files named {r.name}; a signed file is named "
                              "by its file name alone, so rename one of them and sign again")
    require_store(db)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        run = store.run(run_id)
        findings = store.findings(run_id)
        attest.require_signable(run, findings)
        doc = export.results_document(store, run_id)
        for r in reports:
            shown.require_own_evidence(run, r, "--report")
            shown.require_same_results(doc, r, "--report")
            shown.require_current_findings(run, doc["findings"], r, "--report")
        data = export.dumps(doc)
    out_dir = out_folder(out_dir)  # made only once everything to sign is known to be signable
    # attestation-RUN, else -2, -3...: a new attestation never replaces an earlier one (its names are claimed), and
    # its results JSON is never named like a report it signs (each subject's name is its own)
    with claimed_stem(out_dir / f"attestation-{run_id}", [".results.json", ".intoto.json"], set(by_name)) as stem:
        results = write_atomic(stem.with_name(stem.name + ".results.json"), data)
        bundle = attest.sign(attest.statement(run, findings, [results] + reports, sig), sig)
        return [results, attest.write_bundle(bundle, stem.with_name(stem.name + ".intoto.json"))]


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
