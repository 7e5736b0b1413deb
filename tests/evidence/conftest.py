"""One real audited run shared by the evidence tests: a tiny ONNX model on a small synthetic set
with one unreadable image, so exports carry data-quality records too."""

import shutil

import pandas as pd
import pytest

from audit import api
from audit.config import AuditConfig
from tests.builders import make_onnx


@pytest.fixture(scope="package")
def run(tmp_path_factory, small_data):
    root = tmp_path_factory.mktemp("evidence")
    data = root / "data"
    shutil.copytree(small_data, data)
    manifest = pd.read_csv(data / "manifest.csv")
    (data / manifest["image"].iloc[-1]).write_bytes(b"not an image")
    model = make_onnx(root / "vendor.onnx")
    db = root / "store.duckdb"
    cfg = AuditConfig(model=model, data=str(data), conditions=["clean", "mask:surgical"], bootstrap=50, mlp_epochs=20,
                      folds=3)
    run_id = api.run_audit(cfg, db)
    api.evaluate_rules(run_id, db)
    return {"root": root, "db": db, "run_id": run_id, "model": model}


@pytest.fixture(scope="package")
def signed(run, tmp_path_factory):
    """A signed report (HTML + PDF + results JSON + bundle) and the signer's key pair."""
    out = tmp_path_factory.mktemp("signed")
    priv, pub = api.keygen(out / "auditor.key")
    files = api.build_report(run["run_id"], run["db"], out / "reports", sign_key=priv, signer="Ada Auditor")
    by = {p.name.split(run["run_id"])[-1]: p for p in files}
    return {"out": out, "priv": priv, "pub": pub, "html": by[".html"], "pdf": by[".pdf"],
            "json": by[".results.json"], "bundle": by[".intoto.json"], "quality": by.get(".data-quality.csv")}
