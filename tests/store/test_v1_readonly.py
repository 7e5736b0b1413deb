"""A store written by an older faceaudit (schema version 1: findings without pack_hash, probe, metric).

Readers upgrade it in place when they can write the file; when they cannot (read-only media, an immutable or
read-only file) the store is refused with one line naming it, instead of being read with columns missing
(which ended in ``AttributeError: 'Pandas' object has no attribute 'pack_hash'`` in export and report)."""

import json
import os
import subprocess

import duckdb
import pytest

from audit.errors import StoreError
from audit.evidence.commands import export_run
from audit.store import Store
from audit.store.migrations import CURRENT_VERSION, migrate

RUN = "20240101-000000-abcdef"


def _v1_store(path):
    """What an older faceaudit wrote: the version-1 schema and one run with a model, a dataset and a finding."""
    con = duckdb.connect(str(path))
    migrate(con, to=1)
    model, dataset = "a" * 64, "b" * 64
    con.execute("INSERT INTO models VALUES (?, 'old-model', '/models/old.onnx', 1000, 17, 'pytorch', '{}', "
                "'{\"name\": \"old-model\"}', now())", [model])
    con.execute("INSERT INTO datasets VALUES (?, 'old-data', '/data/old', 40, 10, '{}', now())", [dataset])
    con.execute("INSERT INTO runs VALUES (?, ?, ?, 'completed', '{}', 0, now(), now(), 1, 'host', NULL, '{}', NULL)",
                [RUN, model, dataset])
    con.execute("INSERT INTO findings VALUES (?, 'baseline', '1.0', 'LEAK-1', 'Sex leakage', 'fail', 'high', 0.4, "
                "'> 0.1', '> 0.2', 'ci_low', ?, '[]', 'too much', now())",
                [RUN, json.dumps({"ci_low": 0.3, "ci_high": 0.5})])
    con.close()
    return path


def _version(path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
    finally:
        con.close()


@pytest.fixture
def unwritable():
    """Make a file unwritable for this process (immutable as root, mode 0444 otherwise); undone afterwards."""
    undo = []

    def make(path):
        if os.geteuid() == 0:
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
                pytest.skip("chattr +i is not available here")
            undo.append(lambda: subprocess.run(["chattr", "-i", str(path)], check=True))
        else:
            path.chmod(0o444)
            undo.append(lambda: path.chmod(0o644))
        try:
            open(path, "r+b").close()
        except PermissionError:
            return path
        pytest.skip("cannot make a file unwritable here")

    yield make
    for fn in undo:
        fn()


def test_unwritable_v1_store_is_refused_with_one_line(tmp_path, unwritable):
    db = unwritable(_v1_store(tmp_path / "old.duckdb"))
    before = db.read_bytes()
    for call in (lambda: Store(db, read_only=True), lambda: export_run(RUN, db, tmp_path / "out")):
        with pytest.raises(StoreError) as err:
            call()
        msg = str(err.value)
        assert "\n" not in msg
        assert msg.startswith(f"{db}: ") and "older faceaudit" in msg and "schema version 1" in msg
        assert "writable" in msg and "Copy it" in msg
    assert db.read_bytes() == before and _version(db) == 1
    assert not (tmp_path / "out").exists()  # nothing half-written: not even the folder


def test_writable_v1_store_is_upgraded_and_exports(tmp_path):
    """Readers upgrade a writable old store once (the file changes: migrations only add columns), then read it."""
    db = _v1_store(tmp_path / "old.duckdb")
    with Store(db, read_only=True) as s:
        findings = s.findings(RUN)
    assert _version(db) == CURRENT_VERSION
    assert findings[["pack_hash", "probe", "metric"]].iloc[0].tolist() == ["", "", ""]
    [out] = export_run(RUN, db, tmp_path / "out")
    doc = json.loads(out.read_text())
    assert [(f["rule_id"], f["pack_hash"]) for f in doc["findings"]] == [("LEAK-1", "")]
