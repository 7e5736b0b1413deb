"""The one entry point: everything the CLI and the TUI do goes through these functions.

* :func:`run_audit` / :func:`check_config` - run probes on a model and a dataset into the store (:mod:`audit.run`)
* :func:`inspect_model` - validate an ONNX file and describe it
* :func:`sample_data` / :func:`prepare` - materialise the embedded synthetic dataset; align a dataset
* :func:`build_report` / :func:`compare` - render HTML/PDF from the store alone (:mod:`audit.report.build`)
* :func:`evaluate_rules` - (re-)apply rule packs to a stored run (:mod:`audit.rules.apply`)
* :func:`export_run` / :func:`verify_bundle` / :func:`keygen` / :func:`gate` - evidence (:mod:`audit.evidence.commands`);
  :func:`attest_run` - sign a run and its reports, each page checked against the store (:mod:`audit.report.signing`)
* :func:`run_campaign` / :func:`run_cells` - models x datasets into one store, local or Ray (:mod:`audit.executors`)
* :func:`demo` - the whole battery on the sample models (a campaign)
* :func:`protocol_fields` - the settings a published protocol pins, applied to a run's (:mod:`audit.protocol`)

The work itself lives in those packages; this module checks what the caller gave and delegates, so the
supported surface is readable in one place. Every other module is internal.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from audit.config import AuditConfig, make_config
from audit.errors import ConfigError
from audit.evidence.commands import export_run, require_signable
from audit.evidence.commands import gate_run as gate
from audit.executors import CampaignResult, DemoResult, campaign_cells, demo, run_campaign, run_cells
from audit.paths import out_folder, require_store
from audit.report import build
from audit.report.build import headline_table
from audit.report.signing import attest_run
from audit.rules.apply import evaluate_rules
from audit.run import (Cancelled, Inspection, ProgressFn, check_config, inspect_model, resolve_dataset, run_audit,
                       sample_data, sample_models, validate_config)
from audit.store import Store

__all__ = ["AuditConfig", "ConfigError", "Cancelled", "ProgressFn", "Inspection", "CampaignResult", "DemoResult",
           "run_audit", "check_config", "validate_config", "inspect_model", "sample_models", "sample_data",
           "resolve_dataset", "prepare", "list_runs", "show_run", "headline_table", "evaluate_rules",
           "build_report", "compare", "export_run", "attest_run", "verify_bundle", "describe_statement", "keygen", "gate",
           "run_campaign", "run_cells", "campaign_cells", "demo", "protocol_fields"]


def prepare(data: str, out: str | Path, detector: str = "auto", min_face_confidence: float = 0.9, size: int = 112):
    """Write an aligned copy of a dataset (faces, ``manifest.csv`` with landmarks, ``quality.csv`` of the
    images that could not be used); ``out`` must be new or empty. Returns :class:`audit.intake.prepare.Prepared`."""
    from audit.intake.prepare import prepare as _prepare

    make_config(model=Path("-"), data=data, detector=detector, min_face_confidence=min_face_confidence)
    return _prepare(resolve_dataset(data, detector=detector, min_face_confidence=min_face_confidence), Path(out), size)


def build_report(run_ref: str, db: str | Path, out_dir: str | Path, formats: list[str] | None = None,
                 no_faces: bool = False, packs: list[str] | None = None, sign_key: str | Path | None = None,
                 signer: str | None = None, apply_packs: bool = False) -> list[Path]:
    """Render a stored run to HTML/PDF (:func:`audit.report.build.build_report`); with ``sign_key`` the run
    must be completed and judged, which is checked before any file is written. ``apply_packs``: judge the run with
    ``packs`` first and store their findings (:func:`evaluate_rules`), once every option has been checked, so a
    command refused for a bad option leaves the store as it was."""
    if apply_packs and packs:
        build.check_options(formats, sign_key, signer)
        out_folder(out_dir)  # a folder that cannot be made is refused before the store changes
        if sign_key is not None:  # signable on the findings the packs are about to give, judged in memory
            require_signable(run_ref, db, packs=packs)
        evaluate_rules(run_ref, db, packs)
    elif sign_key is not None:
        require_signable(run_ref, db)
    return build.build_report(run_ref, db, out_dir, formats, no_faces, packs, sign_key, signer)


def compare(run_refs: list[str], db: str | Path, out_dir: str | Path, formats: list[str] | None = None,
            reference: str | None = None) -> list[Path]:
    """Comparison report of two or more stored runs (:func:`audit.report.build.compare`): what differs, and for
    comparable runs paired differences against ``reference`` (default the first) and rankings; a run given twice
    (under any reference) is refused: a comparison of a run with itself says nothing."""
    if Path(out_dir).exists() and not Path(out_dir).is_dir():  # the options first, as compare itself does
        raise ConfigError(f"--out {out_dir}: is a file; give a folder")
    if Path(db).exists():
        with Store(db, read_only=True) as store:
            ids = [store.resolve_run(r) for r in run_refs]
        twice = next((i for i in ids if ids.count(i) > 1), None)
        if twice:
            raise ConfigError(f"compare: run {twice} is given more than once; compare two or more different runs")
    return build.compare(run_refs, db, out_dir, formats, reference=reference)


def list_runs(db: str | Path) -> pd.DataFrame:
    """Every stored run with its finding counts (an empty table when the store does not exist yet)."""
    if not Path(db).exists():
        return pd.DataFrame(columns=["run_id", "model", "dataset", "status", "started_at", "n_pass", "n_warn", "n_fail"])
    with Store(db, read_only=True) as store:
        return store.runs()


def show_run(run_ref: str, db: str | Path) -> dict:
    """A stored run: its record, probes, findings and metrics."""
    require_store(db)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        return {"run": store.run(run_id), "probes": store.probes(run_id), "findings": store.findings(run_id),
                "metrics": store.metrics(run_id)}


def verify_bundle(bundle: str | Path, reports: list[Path] | None = None, pubkey: str | Path | None = None):
    """Check an attestation bundle's signature and the SHA-256 of each report file against it."""
    from audit.evidence import verify

    return verify(bundle, [Path(r) for r in reports] if reports else None, pubkey)


def describe_statement(stmt: dict) -> list[str]:
    """What a verified statement vouches for, one line each: model, dataset, run, signer, tool, protocol, packs."""
    from audit.evidence.attest import describe

    return describe(stmt)


def keygen(out: str | Path) -> tuple[Path, Path]:
    """Write an Ed25519 key pair: ``OUT`` (private, mode 0600) and ``OUT.pub``."""
    from audit.evidence import keygen as _keygen

    return _keygen(out)


def protocol_fields(path: str | Path, fields: dict, explicit: set[str], packs: list[str] | None) -> tuple[dict, list]:
    """A run's config fields and rule packs under the protocol file at ``path``: the protocol's settings in
    force (an ``explicit`` option that contradicts one is refused), its packs by default, and every pack checked
    against the SHA-256 the protocol pins, all before anything runs."""
    from audit.protocol import apply
    from audit.run.protocols import load_checked, packs_under

    proto = load_checked(path)
    packs = packs_under(proto, packs)
    return apply(proto, fields, explicit), packs or []
