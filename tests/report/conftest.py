"""A quick run of every probe (the demo's helper models) and a second model's run on the same people, audited once
per session on the shared small synthetic set: the report-size and browser tests read them."""

from __future__ import annotations

import pytest

from audit import api
from audit.config import AuditConfig
from tests.conftest import SAMPLE_MODELS


@pytest.fixture(scope="session")
def every_probe(tmp_path_factory, small_data):
    """(store, run with every probe on fr-baseline, run of fr-maskaware with leakage and identity), rules applied.
    The quick preset's conditions and attack budgets; fewer resamples and folds only to keep it short."""
    root = tmp_path_factory.mktemp("every-probe")
    db = root / "store.duckdb"
    m = {name: SAMPLE_MODELS / f"{name}.onnx" for name in ("fr-baseline", "fr-maskaware", "fr-private",
                                                           "attr-classifier")}
    short = {"data": str(small_data), "preset": "quick", "bootstrap": 50, "folds": 3, "cv_repeats": 1,
             "mlp_epochs": 5}
    full = api.run_audit(AuditConfig(model=m["fr-baseline"], probes=["leakage", "identity", "inversion", "cloak"],
                                     evaluator=m["fr-maskaware"], attacker_model=m["fr-private"],
                                     attribute_model=m["attr-classifier"], surrogates=[m["fr-maskaware"]], **short), db)
    other = api.run_audit(AuditConfig(model=m["fr-maskaware"], probes=["leakage", "identity"], **short), db)
    for run_id in (full, other):
        api.evaluate_rules(run_id, db)
    return db, full, other
