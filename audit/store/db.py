"""The DuckDB store: typed read and write functions over the tables in ``schema.sql``.

Writes are bulk (DataFrame registered as a view, ``INSERT ... BY NAME``), validated with
the table's pandera schema first. Each probe writes its rows inside one transaction so an
interrupted run keeps the probes it finished.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import numpy as np
import pandas as pd
import pandera.pandas as pa

from audit.errors import StoreError
from audit.store.migrations import CURRENT_VERSION, migrate
from audit.store.schemas import TABLES

DEFAULT_DB = "faceaudit.duckdb"
LOCKED = ("{path}: the database is in use by another process{holder}. Close the other faceaudit command or TUI "
          "using it, or choose another file with --db.")
NOT_A_STORE = ("{path}: not a faceaudit store ({why}); it was left untouched. Give --db a faceaudit database, or a "
               "new file name for a fresh store.")
OLDER_READ_ONLY = ("{path}: this store was written by an older faceaudit (schema version {version}; this one reads "
                   "version {current}) and must be upgraded once, which needs write access, but the file cannot be "
                   "written here ({why}). Copy it somewhere writable and give --db the copy (any faceaudit command "
                   "upgrades it), or open it once where it is writable.")
# DuckDB otherwise installs and loads extensions on demand - handed an SQLite file it downloads the
# sqlite scanner. faceaudit never touches the network, so both are off on every connection.
OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _attribute_summary(dataset) -> dict:
    """Per attribute of a dataset: min / median / max of age, counts per value of the others."""
    summary = {}
    for a in dataset.attributes:
        col = dataset.manifest[a]
        if a == "age":
            summary[a] = {"min": float(col.min()), "median": float(col.median()), "max": float(col.max())}
        else:
            summary[a] = {str(k): int(v) for k, v in col.value_counts().sort_index().items()}
    return summary


class Store:
    """A connection to one faceaudit DuckDB file (``:memory:`` works for tests)."""

    def __init__(self, path: str | Path = DEFAULT_DB, read_only: bool = False):
        self.path = str(path)
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.exists():
                raise StoreError(f"{self.path}: folder {parent} does not exist")
            if Path(self.path).is_dir():
                raise StoreError(f"{self.path}: is a folder; give --db a database file, e.g. "
                                 f"{Path(self.path) / 'faceaudit.duckdb'}")
            if read_only and not Path(self.path).exists():
                raise StoreError(f"{self.path}: no such database (run an audit first, e.g. 'faceaudit demo')")
        self.con = _connect(self.path, read_only)
        self.read_only = read_only
        self._interrupted: set[str] = set()
        self._in_transaction = False
        try:
            version = _store_version(self.con)
        except BaseException:
            self.con.close()
            raise
        if version is None:
            # Someone else's DuckDB file: never create faceaudit tables inside it.
            self.con.close()
            raise StoreError(NOT_A_STORE.format(path=self.path, why="it holds other tables and no faceaudit schema"))
        if read_only:
            if version == 0:
                self.con.close()
                raise StoreError(NOT_A_STORE.format(path=self.path, why="it has no faceaudit tables"))
            if version > CURRENT_VERSION:
                self.con.close()
                raise StoreError(f"{self.path}: database schema version {version} is newer than this faceaudit "
                                 f"({CURRENT_VERSION}); upgrade faceaudit")
            if version < CURRENT_VERSION:
                self._upgrade(version)
            # Readers must not write (read-only media, evidence stores): a dead writer's run is shown as
            # interrupted without changing the file.
            self._interrupted = set(self._dead_runs())
        else:
            migrate(self.con)
            self.reconcile_runs()

    def _upgrade(self, version: int) -> None:
        """Bring an older faceaudit store to the current schema before reading it: the file is upgraded in place
        (once, as a writer would; migrations only add), although this Store then reads it read-only.

        This faceaudit's reads assume the current schema, so a store that cannot be written (read-only media,
        an immutable or read-only file) is refused with one line instead of being read with columns missing."""
        self.con.close()
        try:
            with duckdb.connect(self.path, config=dict(OFFLINE)) as con:
                migrate(con)
        except duckdb.Error as exc:
            why = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "Could not set lock" in why:  # another process holds it (e.g. an older faceaudit reading it)
                holder = " (" + why[why.index("PID"):].split(")")[0].strip() + ")" if "PID" in why else ""
                raise StoreError(LOCKED.format(path=self.path, holder=holder)) from None
            raise StoreError(OLDER_READ_ONLY.format(path=self.path, version=version, current=CURRENT_VERSION,
                                                    why=why[:200])) from None
        self.con = _connect(self.path, True)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _rows(self, sql: str, params: list | None = None) -> list[tuple]:
        """Execute and fetch everything (DuckDB wants each result consumed before the next call)."""
        return self.con.execute(sql, params or []).fetchall()

    # ------------------------------------------------------------------ writing
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; a transaction opened inside another is part of it (one ``BEGIN``, one ``COMMIT``)."""
        if self._in_transaction:
            yield
            return
        self._rows("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._rows("ROLLBACK")
            raise
        else:
            self._rows("COMMIT")
        finally:
            self._in_transaction = False

    def write(self, table: str, df: pd.DataFrame) -> None:
        """Validate ``df`` with the table's pandera schema and insert it in bulk."""
        if df.empty:
            return
        try:
            df = TABLES[table].validate(df, lazy=True)
        except pa.errors.SchemaErrors as exc:
            fc = exc.failure_cases.iloc[0]
            raise StoreError(f"refusing to write table '{table}': column '{fc['column']}' value "
                             f"{fc['failure_case']!r} fails {fc['check']}") from None
        self.con.register("_faceaudit_write", df)
        try:
            cols = ", ".join(f'"{c}"' for c in df.columns)
            self._rows(f'INSERT INTO {table} ({cols}) SELECT {cols} FROM _faceaudit_write')
        finally:
            self.con.unregister("_faceaudit_write")

    def upsert_model(self, info, profile) -> None:
        """Record a model once (by its SHA-256)."""
        self.add_model(info.sha256, lambda: pd.DataFrame([{
            "model_id": info.sha256, "name": profile.name, "path": str(info.path), "size_bytes": info.size_bytes,
            "opset": info.opset, "producer": info.producer, "info": json.dumps(info.to_dict()),
            "profile": profile.model_dump_json(), "added_at": _now()}]))

    def add_model(self, model_id: str, row: Callable[[], pd.DataFrame]) -> None:
        """Insert the ``models`` row that ``row()`` makes, unless the store has the model already."""
        if not self._rows("SELECT 1 FROM models WHERE model_id = ?", [model_id]):
            self.write("models", row())

    def upsert_dataset(self, dataset, issues) -> None:
        """Record a dataset once, and every data-quality problem found in it: a run that uses images an earlier
        run did not decode may find new ones (files outside a run's budget are screened, not decoded)."""
        did = dataset.dataset_id
        self.add_dataset(did, lambda: pd.DataFrame([{
            "dataset_id": did, "name": dataset.name, "source": dataset.source,
            "n_images": len(dataset.manifest), "n_subjects": dataset.n_subjects,
            "attributes": json.dumps(_attribute_summary(dataset)), "added_at": _now()}]), pd.DataFrame(
            [{"dataset_id": did, "image": i.image, "row_number": i.row, "problem": i.problem, "detail": i.detail}
             for i in issues], columns=["dataset_id", "image", "row_number", "problem", "detail"]))

    def add_dataset(self, dataset_id: str, row: Callable[[], pd.DataFrame], quality: pd.DataFrame) -> None:
        """Insert the ``datasets`` row that ``row()`` makes unless the store has the dataset, and the
        ``data_quality`` rows whose (row_number, problem) it has not recorded for that dataset yet."""
        known = bool(self._rows("SELECT 1 FROM datasets WHERE dataset_id = ?", [dataset_id]))
        if known and len(quality):
            seen = {(r[0], r[1]) for r in self._rows(
                "SELECT row_number, problem FROM data_quality WHERE dataset_id = ?", [dataset_id])}
            quality = quality[[(int(r), p) not in seen for r, p in zip(quality["row_number"], quality["problem"])]]
        if known and not len(quality):
            return
        with self.transaction():
            if not known:
                self.write("datasets", row())
            self.write("data_quality", quality)

    def create_run(self, model_id: str, dataset_id: str, config: dict, seed: int, environment: dict) -> str:
        run_id = datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.write("runs", pd.DataFrame([{
            "run_id": run_id, "model_id": model_id, "dataset_id": dataset_id, "status": "running",
            "config": json.dumps(config, sort_keys=True), "seed": seed, "started_at": _now(), "finished_at": None,
            "pid": os.getpid(), "host": socket.gethostname(), "error": None,
            "environment": json.dumps(environment, sort_keys=True), "parity": None}]))
        return run_id

    def set_run_status(self, run_id: str, status: str, error: str | None = None) -> None:
        finished = None if status == "running" else _now()
        # The process (and host) that holds the run now: a run resumed on another machine is this one's.
        self._rows("UPDATE runs SET status = ?, finished_at = ?, error = ?, pid = ?, host = ? WHERE run_id = ?",
                         [status, finished, error, os.getpid(), socket.gethostname(), run_id])

    def set_parity(self, run_id: str, parity: dict) -> None:
        self._rows("UPDATE runs SET parity = ? WHERE run_id = ?", [json.dumps(parity), run_id])

    def _dead_runs(self) -> list[str]:
        """Runs left ``running`` by another process. A run holds its store open for writing from start to end, and
        DuckDB locks the file against every other process meanwhile: this one could open it, so no other process is
        writing a run into it, whatever host or process id the run names (a run stopped in a container, whose
        hostname was its own; a store copied from another machine; a process id since taken by another program).
        A run of this very process (the TUI reading while its audit runs) is alive."""
        me = (socket.gethostname(), os.getpid())
        rows = self._rows("SELECT run_id, pid, host FROM runs WHERE status = 'running'")
        return [r[0] for r in rows if (r[2], r[1]) != me]

    def reconcile_runs(self) -> int:
        """Mark runs left ``running`` by another process (:meth:`_dead_runs`) as ``interrupted``."""
        dead = self._dead_runs()
        for run_id in dead:
            self._rows("UPDATE runs SET status = 'interrupted' WHERE run_id = ?", [run_id])
        return len(dead)

    def record_probe(self, run_id: str, probe: str, status: str, started: datetime, seconds: float,
                     message: str = "") -> None:
        self._rows("DELETE FROM run_probes WHERE run_id = ? AND probe = ?", [run_id, probe])
        self.write("run_probes", pd.DataFrame([{
            "run_id": run_id, "probe": probe, "status": status, "started_at": started, "finished_at": _now(),
            "seconds": float(seconds), "message": message}]))

    def delete_findings(self, run_id: str, pack: str | None = None) -> None:
        """The run's findings of ``pack`` (every pack's when None)."""
        if pack is None:
            self._rows("DELETE FROM findings WHERE run_id = ?", [run_id])
        else:
            self._rows("DELETE FROM findings WHERE run_id = ? AND pack = ?", [run_id, pack])

    def write_embeddings(self, model_id: str, dataset_id: str, condition: str, seed: int,
                         rows: np.ndarray, vectors: np.ndarray) -> None:
        self.replace_embeddings(pd.DataFrame({
            "model_id": model_id, "dataset_id": dataset_id, "condition": condition, "seed": int(seed),
            "row_index": rows.astype(np.int64), "vector": list(vectors.astype(np.float32))}))

    def replace_embeddings(self, df: pd.DataFrame) -> None:
        """Write ``embeddings`` rows, replacing what the cache held for each (model, dataset, condition, seed)."""
        with self.transaction():
            for (model_id, dataset_id, condition, seed), _ in df.groupby(
                    ["model_id", "dataset_id", "condition", "seed"]):
                self._rows("DELETE FROM embeddings WHERE model_id=? AND dataset_id=? AND condition=? AND seed=?",
                           [model_id, dataset_id, condition, int(seed)])
            self.write("embeddings", df)

    # ------------------------------------------------------------------ reading
    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or []).df()

    def cached_embeddings(self, model_id: str, dataset_id: str, condition: str, seed: int):
        """``(rows, vectors)`` from the cache, or None."""
        df = self.con.execute(
            "SELECT row_index, vector FROM embeddings WHERE model_id=? AND dataset_id=? AND condition=? AND seed=? "
            "ORDER BY row_index", [model_id, dataset_id, condition, int(seed)]).df()
        if df.empty:
            return None
        return df["row_index"].to_numpy(), np.stack(df["vector"].to_numpy()).astype(np.float32)

    def runs(self) -> pd.DataFrame:
        df = self.df("""
            SELECT r.run_id, m.name AS model, d.name AS dataset, r.status, r.started_at, r.finished_at,
                   r.model_id, r.dataset_id,
                   count(f.rule_id) FILTER (WHERE f.status = 'pass') AS n_pass,
                   count(f.rule_id) FILTER (WHERE f.status = 'warn') AS n_warn,
                   count(f.rule_id) FILTER (WHERE f.status = 'fail') AS n_fail
            FROM runs r LEFT JOIN models m USING (model_id) LEFT JOIN datasets d USING (dataset_id)
            LEFT JOIN findings f USING (run_id)
            GROUP BY ALL ORDER BY r.started_at DESC, r.run_id DESC""")
        return self._reconciled(df)

    def _reconciled(self, df: pd.DataFrame) -> pd.DataFrame:
        """Runs as a writer would see them after :meth:`reconcile_runs` (read-only stores)."""
        if self._interrupted and len(df):
            df.loc[df["run_id"].isin(self._interrupted), "status"] = "interrupted"
        return df

    def resolve_run(self, ref: str) -> str:
        """A full run id from an id or unique prefix; ``latest`` is the newest run."""
        if ref == "latest":
            row = next(iter(self._rows("SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1")), None)
            if not row:
                raise StoreError(f"{self.path}: no runs in this database")
            return row[0]
        if not ref.strip():
            raise StoreError("empty run reference; give a run id, a unique prefix or 'latest'")
        # starts_with, not LIKE: '%' and '_' in a reference are characters, not patterns.
        rows = self._rows("SELECT run_id FROM runs WHERE starts_with(run_id, ?)", [ref])
        if not rows:
            raise StoreError(f"{self.path}: no run '{ref}' (see 'faceaudit runs list')")
        if len(rows) > 1:
            raise StoreError(f"run id prefix '{ref}' is ambiguous: {[r[0] for r in rows][:5]}")
        return rows[0][0]

    def run(self, run_id: str) -> dict:
        df = self.df("""SELECT r.*, m.name AS model_name, m.path AS model_path, m.info AS model_info,
                        m.profile AS model_profile, m.size_bytes, m.opset, m.producer,
                        d.name AS dataset_name, d.source AS dataset_source, d.n_images, d.n_subjects,
                        d.attributes AS dataset_attributes
                        FROM runs r LEFT JOIN models m USING (model_id) LEFT JOIN datasets d USING (dataset_id)
                        WHERE run_id = ?""", [run_id])
        if df.empty:
            raise StoreError(f"no run '{run_id}'")
        rec = self._reconciled(df).iloc[0].to_dict()
        for key in ("config", "environment", "parity", "model_info", "model_profile", "dataset_attributes"):
            if isinstance(rec.get(key), str):
                rec[key] = json.loads(rec[key])
        return rec

    def metrics(self, run_id: str) -> pd.DataFrame:
        return self.df('SELECT * FROM metrics WHERE run_id = ? ORDER BY probe, condition, metric, attribute, "group", '
                       'setting', [run_id])

    def findings(self, run_id: str) -> pd.DataFrame:
        return self.df("SELECT * FROM findings WHERE run_id = ? ORDER BY pack, rule_id", [run_id])

    def probes(self, run_id: str) -> pd.DataFrame:
        return self.df("SELECT * FROM run_probes WHERE run_id = ? ORDER BY started_at", [run_id])

    def artifacts(self, run_id: str, probe: str | None = None) -> pd.DataFrame:
        if probe:
            return self.df("SELECT * FROM artifacts WHERE run_id = ? AND probe = ? ORDER BY name", [run_id, probe])
        return self.df("SELECT * FROM artifacts WHERE run_id = ? ORDER BY probe, name", [run_id])

    def data_quality(self, dataset_id: str) -> pd.DataFrame:
        """Every data-quality record of a dataset, whichever run found it."""
        return self.df("SELECT * FROM data_quality WHERE dataset_id = ? ORDER BY row_number", [dataset_id])

    def run_data_quality(self, run_id: str) -> pd.DataFrame:
        """The data-quality records of the images one run screened and decoded: those its ``dataset/used.json``
        lists (``quality``: row and problem). Another run on the same dataset may decode images this one never
        used and find more; they are not this run's (its report and export stay as they were). A run stored
        before ``used.json`` listed them gets every record of its dataset."""
        quality = self.data_quality(self.run(run_id)["dataset_id"])
        used = self.df("SELECT data FROM artifacts WHERE run_id = ? AND probe = 'dataset' AND name = 'used.json'",
                       [run_id])
        listed = json.loads(bytes(used["data"].iloc[0])).get("quality") if len(used) else None
        if listed is None:
            return quality
        keep = {(int(row), str(problem)) for row, problem in listed}
        mask = np.array([(int(r), p) in keep for r, p in zip(quality["row_number"], quality["problem"])], dtype=bool)
        return quality[mask].reset_index(drop=True)


def preflight(path: str | Path) -> None:
    """Refuse a ``--db`` that cannot become a run's store before minutes of work are spent; creates nothing.

    An existing file gets the same checks as any open (not a store, locked, a folder); a new one needs
    an existing folder."""
    p = Path(path)
    if str(path) == ":memory:":
        return
    if p.exists():
        Store(p).close()
    elif not p.parent.is_dir():
        raise StoreError(f"{p}: folder {p.parent} does not exist")


def _connect(path: str, read_only: bool):
    """A DuckDB connection with extensions off; every failure is one line naming the file."""
    try:
        return duckdb.connect(path, read_only=read_only, config=dict(OFFLINE))
    except duckdb.ConnectionException as exc:
        if read_only and "different configuration" in str(exc):
            # This process already holds the file for writing (the TUI while an audit runs): DuckDB allows
            # one configuration per file and process, so read through that one; a read-only Store writes nothing.
            return _connect(path, False)
        raise StoreError(f"{path}: cannot open database: {str(exc).splitlines()[0]}") from None
    except duckdb.IOException as exc:
        msg = str(exc)
        if "lock" in msg.lower():
            holder = ""
            if "PID" in msg:
                holder = " (" + msg[msg.index("PID"):].split(")")[0].strip() + ")"
            raise StoreError(LOCKED.format(path=path, holder=holder)) from None
        if "not a valid DuckDB" in msg or "xtension" in msg:
            # Not DuckDB at all (SQLite, text, an empty file): DuckDB would want an extension for some.
            raise StoreError(NOT_A_STORE.format(path=path, why="not a DuckDB database file")) from None
        raise StoreError(f"{path}: cannot open database: {msg.splitlines()[0]}") from None
    except duckdb.Error as exc:
        raise StoreError(NOT_A_STORE.format(path=path, why=str(exc).splitlines()[0][:200])) from None


def _store_version(con) -> int | None:
    """The faceaudit schema version; 0 for an empty database; None for someone else's database."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_catalog = current_database()").fetchall()}
    if not tables:
        return 0
    if not {"schema_version", "runs"} <= tables:
        return None
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
