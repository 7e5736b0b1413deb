"""Machine-readable exports: every stored number, valid against the shipped JSON Schema."""

import hashlib
import json

import jsonschema
import pandas as pd
import pytest

from audit import api
from audit.errors import ConfigError
from audit.evidence import schema
from audit.rules import load_pack
from audit.store import Store


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    paths = api.export_run(run["run_id"], run["db"], out, ["json", "parquet"])
    return {p.suffix: p for p in paths}


def test_json_export_validates_against_the_shipped_schema(exported):
    doc = json.loads(exported[".json"].read_text())
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.Draft202012Validator(schema()).validate(doc)


def test_json_export_carries_every_metric_finding_and_fingerprint(run, exported):
    doc = json.loads(exported[".json"].read_text())
    with Store(run["db"]) as store:
        metrics, findings = store.metrics(run["run_id"]), store.findings(run["run_id"])
        r = store.run(run["run_id"])
    assert len(doc["metrics"]) == len(metrics) > 50
    assert len(doc["findings"]) == len(findings) > 10
    assert doc["model"]["sha256"] == hashlib.sha256(run["model"].read_bytes()).hexdigest() == r["model_id"]
    assert doc["dataset"]["id"] == r["dataset_id"]
    # Landmarks from the manifest: the id is the file fingerprint, and no detector is named.
    assert doc["dataset"]["fingerprint"] == r["dataset_id"] and doc["dataset"]["detector"] is None
    assert doc["config"]["seed"] == doc["seeds"]["seed"] == 0 and doc["config"]["preset"] == "quick"
    assert doc["environment"]["packages"]["duckdb"]
    # every metric row with its interval, n, direction and setting, exactly as stored
    first = metrics.iloc[0]
    row = next(m for m in doc["metrics"] if all(m[k] == first[k] for k in ("probe", "condition", "metric",
                                                                            "attribute", "group", "setting")))
    assert row["value"] == pytest.approx(first["value"]) and row["n"] == first["n"]
    assert row["direction"] == first["direction"]
    # findings name the pack file that judged them
    baseline = load_pack("baseline")
    f = next(f for f in doc["findings"] if f["pack"] == "baseline")
    assert f["pack_hash"] == baseline.sha256 and f["pack_version"] == str(baseline.version)
    assert f["metric"] and f["probe"] and isinstance(f["references"], list)
    # the corrupted image is a data-quality record, named by row
    assert any(q["problem"] == "unreadable" and q["row_number"] >= 1 for q in doc["data_quality"])


def test_json_export_is_deterministic_and_has_no_nan(run, tmp_path):
    first = api.export_run(run["run_id"], run["db"], tmp_path)[0]
    second = api.export_run(run["run_id"], run["db"], tmp_path)[0]
    assert second != first and second.name == f"results-{run['run_id']}-2.json"  # never replaced
    a, b = first.read_bytes(), second.read_bytes()
    assert a == b
    assert b"NaN" not in a and b"Infinity" not in a


def test_parquet_export_is_the_metrics_table(run, exported):
    df = pd.read_parquet(exported[".parquet"])
    with Store(run["db"]) as store:
        metrics = store.metrics(run["run_id"])
    assert list(df.columns) == list(metrics.columns)
    pd.testing.assert_frame_equal(df, metrics, check_dtype=False)


def test_bad_format_and_out_are_one_line_errors(run, tmp_path):
    with pytest.raises(ConfigError, match="--format: unknown format"):
        api.export_run(run["run_id"], run["db"], tmp_path, ["xml"])
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        api.export_run(run["run_id"], run["db"], f)
