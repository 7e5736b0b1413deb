"""Moving a run between stores (Ray workers -> the head): the head records what a local run would."""

import pyarrow as pa

from audit import api
from audit.config import AuditConfig
from audit.store import Store
from audit.store.transfer import export_run, import_run


def test_import_records_new_quality_problems_of_a_known_dataset(tiny_model, small_data, tmp_path):
    """A later run on a dataset the head already has may find problems an earlier run did not decode; the head
    keeps them, as Store.upsert_dataset does for a local run, and writes nothing twice."""
    config = AuditConfig(model=tiny_model, data=str(small_data), probes=["identity"], conditions=["clean"],
                         parity=False, bootstrap=20)
    worker, head = tmp_path / "worker.duckdb", tmp_path / "head.duckdb"
    first, second = api.run_audit(config, worker), api.run_audit(config, worker)
    with Store(head) as s:
        import_run(s, export_run(str(worker), first))
    tables = export_run(str(worker), second)
    dataset_id = tables["runs"].column("dataset_id")[0].as_py()
    late = pa.table({"dataset_id": [dataset_id], "image": ["late.jpg"], "row_number": [10_000],
                     "problem": ["unreadable"], "detail": ["found by the later run"]})
    tables["data_quality"] = pa.concat_tables([tables["data_quality"], late.cast(tables["data_quality"].schema)])
    with Store(head) as s:
        import_run(s, tables)
        quality = s.data_quality(dataset_id)
        assert "late.jpg" in quality["image"].tolist()
        assert len(quality) == len(set(zip(quality["row_number"], quality["problem"])))
        assert s.df("SELECT count(*) AS n FROM models")["n"][0] == 1
        assert s.df("SELECT count(*) AS n FROM datasets")["n"][0] == 1
        assert len(s.metrics(second)) and len(s.metrics(first)) == len(s.metrics(second))
