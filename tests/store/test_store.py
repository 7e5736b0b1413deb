import os
import re
import socket
import subprocess
import sys
from importlib import resources

import pandas as pd
import pytest

from audit.errors import StoreError
from audit.store import TABLES, Store
from audit.store.migrations import CURRENT_VERSION


def ddl_columns() -> dict[str, list[str]]:
    sql = resources.files("audit.store").joinpath("schema.sql").read_text()
    out = {}
    for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", sql, re.S):
        cols = []
        for line in body.splitlines():
            line = line.split("--")[0].strip()
            if line:
                cols.append(line.split()[0].strip('"'))
        out[name] = cols
    return out


def test_pandera_schemas_match_ddl():
    ddl = ddl_columns()
    assert set(ddl) - set(TABLES) == {"schema_version"}
    with Store(":memory:") as s:  # schema.sql plus every migration
        for table, schema in TABLES.items():
            live = [r[1] for r in s._rows(f"PRAGMA table_info('{table}')")]
            assert list(schema.columns) == live, table
            assert live[:len(ddl[table])] == ddl[table], table  # migrations only append columns


def test_schema_version_recorded(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        assert s._rows("SELECT max(version) FROM schema_version")[0][0] == CURRENT_VERSION
    with Store(tmp_path / "a.duckdb") as s:  # reopening applies nothing twice
        assert s._rows("SELECT count(*) FROM schema_version")[0][0] == CURRENT_VERSION


def test_invalid_rows_are_refused_before_write(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        bad = pd.DataFrame([{"run_id": "r", "probe": "p", "condition": "clean", "metric": "m", "attribute": "",
                             "group": "all", "setting": "", "value": 0.5, "ci_low": 0.6, "ci_high": 0.7, "n": 3,
                             "direction": "neutral"}])
        with pytest.raises(StoreError, match="refusing to write table 'metrics'"):
            s.write("metrics", bad)
        assert s._rows("SELECT count(*) FROM metrics")[0][0] == 0


def test_run_lifecycle_and_interrupted(tmp_path):
    db = tmp_path / "a.duckdb"
    with Store(db) as s:
        run = s.create_run("m" * 64, "d" * 64, {"x": 1}, 0, {})
        assert s.run(run)["status"] == "running"
        s.set_run_status(run, "completed")
        assert s.run(run)["status"] == "completed"
        dead = s.create_run("m" * 64, "d" * 64, {}, 0, {})
        s._rows("UPDATE runs SET pid = 999999999 WHERE run_id = ?", [dead])
    with Store(db) as s:  # a new process view: the dead writer's run is interrupted
        assert s.run(dead)["status"] == "interrupted"
        assert s.resolve_run(dead[:20]) == dead


def test_a_run_left_running_by_another_host_or_a_reused_pid_is_interrupted(tmp_path):
    """A review of the store: a run stopped in a container (its own hostname) or whose process id another program
    has since taken stayed 'running' forever and could never be resumed. Whoever opens the store holds DuckDB's
    lock, so no other process is writing a run into it: both are interrupted; this process's own run is not."""
    db = tmp_path / "a.duckdb"
    with Store(db) as s:
        other_host, reused, mine = (s.create_run("m" * 64, "d" * 64, {}, 0, {}) for _ in range(3))
        s._rows("UPDATE runs SET host = 'audit-box-1', pid = 4242 WHERE run_id = ?", [other_host])
        s._rows("UPDATE runs SET pid = 1 WHERE run_id = ?", [reused])  # pid 1 is always alive
    with Store(db, read_only=True) as s:  # a reader shows them interrupted without writing
        assert [s.run(r)["status"] for r in (other_host, reused, mine)] == ["interrupted", "interrupted", "running"]
    with Store(db) as s:
        assert [s.run(r)["status"] for r in (other_host, reused, mine)] == ["interrupted", "interrupted", "running"]
        # Resumed here, the run from the other host is this process's (its host too: a review found it marked
        # interrupted while it ran, its pid this process's but its host still the other machine's).
        s.set_run_status(other_host, "running")
    with Store(db, read_only=True) as s:
        assert s.run(other_host)["status"] == "running" and s.run(other_host)["host"] == socket.gethostname()


def test_locked_database_gives_clear_message(tmp_path):
    db = tmp_path / "locked.duckdb"
    Store(db).close()
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(db)!r}); "
                               "print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="in use by another process"):
            Store(db)
    finally:
        holder.kill()
        holder.wait()


def test_embeddings_cache_round_trip(tmp_path):
    import numpy as np

    with Store(tmp_path / "a.duckdb") as s:
        vec = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
        s.write_embeddings("m", "d", "clean", 0, np.arange(5), vec)
        rows, got = s.cached_embeddings("m", "d", "clean", 0)
        np.testing.assert_array_equal(got, vec)
        assert s.cached_embeddings("m", "d", "mask:n95", 0) is None


def test_missing_db_for_reading(tmp_path):
    with pytest.raises(StoreError, match="no such database"):
        Store(tmp_path / "nope.duckdb", read_only=True)
    assert not os.path.exists(tmp_path / "nope.duckdb")
