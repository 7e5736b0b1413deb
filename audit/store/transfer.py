"""Moving one run between stores as Arrow tables (workers -> the head's single writer).

:func:`export_run` reads everything a run owns, and what it refers to (its model, dataset,
data-quality records and cached embeddings), from a store; :func:`import_run` writes it into
another store in one transaction with the Store's own upserts (model and dataset rows once, data-quality
rows not yet recorded, cached embeddings replaced per condition).
"""

from __future__ import annotations

import pyarrow as pa

from audit.store.db import Store

RUN_TABLES = ("runs", "run_probes", "metrics", "artifacts", "findings")


def export_run(db: str, run_id: str) -> dict[str, pa.Table]:
    with Store(db, read_only=True) as store:
        con = store.con
        model_id, dataset_id, seed = con.execute("SELECT model_id, dataset_id, seed FROM runs WHERE run_id = ?",
                                                 [run_id]).fetchall()[0]  # all: no unfinished result
        out = {t: _arrow(con, f"SELECT * FROM {t} WHERE run_id = ?", [run_id]) for t in RUN_TABLES}
        out["models"] = _arrow(con, "SELECT * FROM models WHERE model_id = ?", [model_id])
        out["datasets"] = _arrow(con, "SELECT * FROM datasets WHERE dataset_id = ?", [dataset_id])
        out["data_quality"] = _arrow(con, "SELECT * FROM data_quality WHERE dataset_id = ?", [dataset_id])
        out["embeddings"] = _arrow(con, "SELECT * FROM embeddings WHERE model_id = ? AND dataset_id = ? AND seed = ?",
                                   [model_id, dataset_id, seed])
    return out


def _arrow(con, query: str, params: list) -> pa.Table:
    """A query's rows as an Arrow table, through a relation (``con.sql``): DuckDB 2 copies the rows and warns when
    Arrow is taken from an ``execute`` result; the method's name changed between DuckDB releases."""
    rel = con.sql(query, params=params)
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        if hasattr(rel, name):
            return _table(getattr(rel, name)())
    raise AttributeError("this DuckDB cannot return Arrow tables")


def _frame(table: pa.Table):
    """Arrow -> pandas with integer columns widened to int64, as the store's pandera schemas expect."""
    df = table.to_pandas()
    for col in df.columns:
        if str(df[col].dtype) in ("int8", "int16", "int32", "uint8", "uint16", "uint32"):
            df[col] = df[col].astype("int64")
    return df


def _table(t) -> pa.Table:
    # Ray may hand back a RecordBatchReader or a Table depending on the DuckDB version.
    return t.read_all() if hasattr(t, "read_all") else t


def import_run(store: Store, tables: dict) -> str:
    """Write an exported run into ``store`` (one transaction); returns its run id."""
    tables = {k: _table(v) for k, v in tables.items()}
    run_id = tables["runs"].column("run_id")[0].as_py()
    model_id = tables["runs"].column("model_id")[0].as_py()
    dataset_id = tables["runs"].column("dataset_id")[0].as_py()
    with store.transaction():  # the Store's own upserts, so a head store records what a local run would
        store.add_model(model_id, lambda: _frame(tables["models"]))
        store.add_dataset(dataset_id, lambda: _frame(tables["datasets"]), _frame(tables["data_quality"]))
        for t in RUN_TABLES:
            if tables[t].num_rows:
                store.write(t, _frame(tables[t]))
        if tables["embeddings"].num_rows:
            store.replace_embeddings(_frame(tables["embeddings"]))
    return run_id
