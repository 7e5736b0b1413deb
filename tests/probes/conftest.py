import pytest

from audit import api
from audit.config import AuditConfig
from audit.store import Store

CONDITIONS = ["clean", "mask:surgical"]


@pytest.fixture(scope="module")
def audit_runs(tmp_path_factory, probe_data):
    """Run the sample models once per module on the 160-person set; returns {name: metrics DataFrame}."""
    from tests.conftest import SAMPLE_MODELS

    db = tmp_path_factory.mktemp("probes") / "store.duckdb"
    out = {}

    def get(name: str, probes=("leakage", "identity")):
        key = (name, tuple(probes))
        if key not in out:
            cfg = AuditConfig(model=SAMPLE_MODELS / f"{name}.onnx", data=str(probe_data), probes=list(probes),
                              conditions=CONDITIONS, preset="quick", parity=False)
            run_id = api.run_audit(cfg, db)
            with Store(db, read_only=True) as s:
                out[key] = s.metrics(run_id)
        return out[key]
    return get


def pick(df, **where):
    rows = df
    for k, v in where.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, (where, len(rows))
    return rows.iloc[0]
