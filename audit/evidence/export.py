"""Machine-readable results: one JSON document per run (validated by ``results.schema.json``)
and a Parquet copy of the metrics table for analysts.

The document is built from the store alone and is deterministic: the same stored run gives the
same bytes (keys sorted, no export timestamp), so its hash can be signed and re-checked later,
and the copy embedded in a signed PDF can be compared with a fresh export.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pandas as pd

import audit
from audit.atomic import atomic_path
from audit.errors import ConfigError
from audit.evidence.dataset import dataset_identity
from audit.store import Store

FORMAT = "faceaudit-results"
FORMAT_VERSION = 1
SEED_DERIVATION = ("Every random stream is numpy.random.default_rng(derive_seed(seed, purpose...)), where derive_seed "
                   "takes the first 8 bytes of SHA-256 over repr((seed, purpose...)) (audit/seeding.py).")
METRIC_FIELDS = ["probe", "condition", "metric", "attribute", "group", "setting", "value", "ci_low", "ci_high", "n",
                 "direction"]


def schema() -> dict:
    """The JSON Schema that every export satisfies (shipped with the package)."""
    return json.loads(resources.files("audit.evidence").joinpath("results.schema.json").read_text())


def json_safe(x):
    """JSON-safe values: NaN (and NaT) become null, +-inf the strings "inf" / "-inf", numpy scalars Python numbers,
    timestamps ISO text."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if x is None or isinstance(x, (str, bool)):
        return x
    if isinstance(x, pd.Timestamp) or hasattr(x, "isoformat"):
        return None if pd.isna(x) else x.isoformat()
    if hasattr(x, "item"):  # numpy scalar
        x = x.item()
    if isinstance(x, float):
        # JSON has no infinity: an infinite value (a disparity ratio where one group has no errors) is written as
        # the string "inf" / "-inf", so it is not mistaken for a missing one (NaN, written as null).
        return x if math.isfinite(x) else None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, int):
        return x
    try:
        if pd.isna(x):
            return None
    except (TypeError, ValueError):
        pass
    return str(x)


def table_records(df: pd.DataFrame, columns: list[str] | None = None) -> list[dict]:
    """Rows (of ``columns``, default all) as JSON-safe dicts: :func:`json_safe` on each."""
    columns = list(df.columns) if columns is None else columns
    return [json_safe(dict(zip(columns, row))) for row in df[columns].itertuples(index=False, name=None)]


def results_document(store: Store, run_id: str) -> dict:
    """Everything stored about one run, as a JSON-ready dict (see ``results.schema.json``)."""
    run = store.run(run_id)
    metrics = store.metrics(run_id)
    findings = store.findings(run_id)
    probes = store.probes(run_id)
    quality = store.run_data_quality(run_id)
    finding_rows = []
    for f in findings.itertuples(index=False):
        location = json.loads(f.location)
        finding_rows.append(json_safe({
            "pack": f.pack, "pack_version": f.pack_version, "pack_hash": f.pack_hash, "rule_id": f.rule_id,
            "title": f.title, "status": f.status, "severity": f.severity, "probe": f.probe, "metric": f.metric,
            "observed": f.observed, "ci_low": location.get("ci_low"), "ci_high": location.get("ci_high"),
            "warn_if": f.warn_if, "fail_if": f.fail_if, "judged": f.judged, "location": location,
            "references": json.loads(f.refs), "message": f.message, "evaluated_at": f.evaluated_at,
            "judged_by": f.judged_by}))
    return json_safe({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": {"name": "faceaudit", "version": audit.__version__},
        "run": {"run_id": run_id, "status": run["status"], "started_at": run["started_at"],
                "finished_at": run["finished_at"], "error": run.get("error"), "parity": run.get("parity")},
        "model": {"sha256": run["model_id"], "name": run["model_name"], "path": run["model_path"],
                  "size_bytes": run["size_bytes"], "opset": run["opset"], "producer": run["producer"],
                  "info": run["model_info"], "profile": run["model_profile"]},
        "dataset": {**dataset_identity(run), "name": run["dataset_name"], "source": run["dataset_source"],
                    "n_images": run["n_images"], "n_subjects": run["n_subjects"],
                    "attributes": run["dataset_attributes"]},
        "config": run["config"],
        "seeds": {"seed": run["seed"], "derivation": SEED_DERIVATION},
        "environment": run["environment"],
        "probes": table_records(probes, ["probe", "status", "started_at", "finished_at", "seconds", "message"]),
        "metrics": table_records(metrics, METRIC_FIELDS),
        "findings": finding_rows,
        "data_quality": table_records(quality, ["image", "row_number", "problem", "detail"]),
    })


def dumps(doc: dict) -> bytes:
    """Canonical bytes of a results document (sorted keys, UTF-8, newline at the end)."""
    return (json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def write_parquet(metrics: pd.DataFrame, path: Path) -> Path:
    """The metrics table as Parquet (one row per metric record, the store's columns)."""
    with atomic_path(path) as tmp:
        metrics.to_parquet(tmp, index=False, engine="pyarrow")
    return path


EXPORT_FORMATS = ("json", "parquet")


def check_formats(formats: list[str]) -> list[str]:
    if not formats:
        raise ConfigError("--format: no format given; use json and/or parquet")
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad:
        raise ConfigError(f"--format: unknown format(s) {bad}; use json and/or parquet")
    return formats
