"""Issue 11, classes 2 and 10: user strings are text, never markup; identifiers are printed whole; --json."""

import json

import pytest
from typer.testing import CliRunner

from audit.cli import app
from tests.builders import make_onnx, store_with_run

HOSTILE = "[bold]vendor[/b] [/] m[/x] $x$ <script>"
runner = CliRunner()


def cli(*args, columns=80):
    result = runner.invoke(app, list(map(str, args)), env={"COLUMNS": str(columns)})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "s.duckdb"
    run_id = store_with_run(db, HOSTILE, HOSTILE, {
        "probe": "leakage", "condition": "mask:surgical", "metric": "normalised_gain", "attribute": "skin_tone",
        "group": "all", "setting": "train=same", "direction": "higher_is_riskier"})
    return db, run_id


def test_inspect_hostile_path_and_whole_hash(tmp_path):
    folder = tmp_path / "m["
    folder.mkdir()
    model = make_onnx(folder / "b].onnx")  # the path reads m[/b].onnx: a closing markup tag
    code, out = cli("inspect", model, columns=40)
    assert code == 0, out
    assert "m[/b].onnx" in out
    from audit.models import load_model_file

    sha = load_model_file(model).sha256
    assert sha in out  # whole, on one line, even at 40 columns
    code, out = cli("inspect", model, "--json")
    doc = json.loads(out)
    assert doc["model"]["sha256"] == sha and doc["model"]["path"].endswith("m[/b].onnx")


def test_runs_list_keeps_run_ids_whole_at_80_columns(store):
    db, run_id = store
    code, out = cli("runs", "list", "--db", db)
    assert code == 0 and run_id in out
    assert "m[/x]" in out and "[/]" in out  # folded into the narrow model column, but literal
    code, out = cli("runs", "list", "--db", db, "--json")
    rows = json.loads(out)
    assert rows[0]["run_id"] == run_id and rows[0]["model"] == HOSTILE


def test_runs_show_prints_hostile_strings_literally_and_numbers_at_80(store):
    db, run_id = store
    code, out = cli("runs", "show", run_id, "--db", db)
    assert code == 0, out
    assert HOSTILE in out and run_id in out and "9" * 64 in out
    assert "0.1234" in out and "1200" in out and "[0.050, 0.200]" in out
    code, out = cli("runs", "show", run_id, "--db", db, "--json")
    doc = json.loads(out)
    assert doc["run"]["run_id"] == run_id and doc["run"]["model_name"] == HOSTILE
    assert doc["metrics"][0]["value"] == 0.1234 and doc["findings"] == []


def test_error_messages_keep_brackets(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "audit.cli", "inspect", str(tmp_path / "[word] m[/b].onnx")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "[word] m[/b].onnx" in proc.stderr and "Traceback" not in proc.stderr
