"""Issue 11, classes 1, 3 and 6: a store is only ever a faceaudit store, opened offline, read-only by readers."""

import http.server
import sqlite3
import threading

import duckdb
import pytest

from audit import api
from audit.errors import StoreError
from audit.store import Store
from audit.store import db as db_mod


def _foreign(path):
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR)")
    con.execute("INSERT INTO customers VALUES (1, 'x')")
    con.close()
    return path


def _tables(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())
    finally:
        con.close()


@pytest.mark.parametrize("read_only", [True, False])
def test_foreign_duckdb_is_refused_untouched(tmp_path, read_only):
    path = _foreign(tmp_path / "theirs.duckdb")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a faceaudit store"):
        Store(path, read_only=read_only)
    assert _tables(path) == ["customers"] and path.read_bytes() == before


@pytest.mark.parametrize("call", [lambda db: api.list_runs(db), lambda db: api.show_run("latest", db),
                                  lambda db: api.evaluate_rules("latest", db, ["baseline"])])
def test_commands_refuse_foreign_duckdb(tmp_path, call):
    path = _foreign(tmp_path / "theirs.duckdb")
    with pytest.raises(StoreError, match="not a faceaudit store"):
        call(path)
    assert _tables(path) == ["customers"]


def test_non_duckdb_files_are_one_line_errors(tmp_path):
    lite = tmp_path / "x.sqlite"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()
    text = tmp_path / "notes.duckdb"
    text.write_text("hello")
    for path in (lite, text):
        for ro in (True, False):
            with pytest.raises(StoreError, match="not a faceaudit store") as err:
                Store(path, read_only=ro)
            assert "\n" not in str(err.value)


def test_empty_duckdb_is_not_a_store_for_readers(tmp_path):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(StoreError, match="no faceaudit tables"):
        Store(path, read_only=True)
    Store(path).close()  # a writer may start a fresh store in it


def test_opening_an_sqlite_file_makes_no_network_request(tmp_path, monkeypatch):
    """DuckDB would download the sqlite extension; a loopback repository proves it is never asked."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    repo = {"custom_extension_repository": f"http://127.0.0.1:{server.server_port}",
            "extension_directory": str(tmp_path / "ext")}
    real = duckdb.connect
    monkeypatch.setattr(db_mod.duckdb, "connect",
                        lambda path, read_only=False, config=None: real(path, read_only=read_only,
                                                                        config={**(config or {}), **repo}))
    lite = tmp_path / "x.sqlite"
    sqlite3.connect(lite).execute("CREATE TABLE t (a)").connection.commit()
    try:
        for ro in (True, False):
            with pytest.raises(StoreError):
                Store(lite, read_only=ro)
        assert hits == []
        # Control: the same connection without faceaudit's settings does reach the (loopback) network.
        with pytest.raises(duckdb.Error):
            real(str(lite), config=repo)
        assert hits
    finally:
        server.shutdown()


def test_readers_work_on_read_only_media(tmp_path, monkeypatch):
    """Read-only media: any writable open fails (simulated, so the test also holds when run as root)."""
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        s.create_run("a" * 64, "b" * 64, {}, 0, {})
    real = duckdb.connect

    def connect(path, read_only=False, config=None):
        if not read_only:
            raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Read-only file system')
        return real(path, read_only=True, config=config)

    monkeypatch.setattr(db_mod.duckdb, "connect", connect)
    assert len(api.list_runs(db)) == 1
    assert api.show_run("latest", db)["run"]["seed"] == 0
    with pytest.raises(StoreError, match="Read-only file system"):
        api.evaluate_rules("latest", db, ["baseline"])


def test_readers_do_not_write_and_still_see_interrupted_runs(tmp_path):
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        run_id = s.create_run("a" * 64, "b" * 64, {}, 0, {})
        s._rows("UPDATE runs SET pid = 2147483646 WHERE run_id = ?", [run_id])  # a process that is gone
    before = db.read_bytes()
    assert api.list_runs(db)["status"].tolist() == ["interrupted"]
    assert api.show_run(run_id, db)["run"]["status"] == "interrupted"
    assert db.read_bytes() == before


def test_readers_upgrade_an_older_store_when_they_can(tmp_path):
    from audit.store.migrations import CURRENT_VERSION, migrate

    db = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(db))
    migrate(con, to=1)
    con.close()
    assert api.list_runs(db).empty
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == CURRENT_VERSION
    con.close()


def test_a_folder_as_db_is_refused_before_any_work(tmp_path, tiny_model):
    from audit.config import AuditConfig
    from audit.store.db import preflight

    with pytest.raises(StoreError, match="is a folder"):
        api.run_audit(AuditConfig(model=tiny_model, data=str(tmp_path / "nowhere")), tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        preflight(tmp_path / "no" / "s.duckdb")
    preflight(tmp_path / "new.duckdb")
    assert not (tmp_path / "new.duckdb").exists()


def test_a_newer_store_is_refused_by_readers_too(tmp_path):
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        s._rows("INSERT INTO schema_version VALUES (99, now())")
    for ro in (True, False):
        with pytest.raises(StoreError, match="newer than this faceaudit"):
            Store(db, read_only=ro)
