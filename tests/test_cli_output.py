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


def test_control_characters_in_data_are_shown_not_obeyed(tmp_path):
    """ESC in a model name would recolour or rewrite the terminal, and in JUnit XML it makes a file no CI system
    can parse (so a closed gate would show no result): both write it as ``\\x1b``."""
    import xml.etree.ElementTree as ET

    from audit import api

    name = "vendor\x1b[31m\x01"
    db = tmp_path / "s.duckdb"
    run_id = store_with_run(db, name, "p", {
        "probe": "leakage", "condition": "mask:surgical", "metric": "normalised_gain", "attribute": "skin_tone",
        "group": "all", "setting": "train=same", "direction": "higher_is_riskier"})
    code, out = cli("runs", "list", "--db", db, columns=200)
    assert code == 0 and "\x1b" not in out and "\x01" not in out and "vendor\\x1b[31m\\x01" in out
    from datetime import datetime

    from audit.store import Store

    with Store(db) as s:  # the probe ran, so the rule is judged (and fails: its finding is printed)
        s.record_probe(run_id, "leakage", "completed", datetime(2026, 1, 1), 1.0, "")
    pack = tmp_path / "p.yaml"
    pack.write_text('pack: "ctl"\nversion: "1"\nrules:\n  - id: R1\n    title: "gain \\e[1m"\n'
                    "    probe: leakage\n    metric: normalised_gain\n    fail_if: \"> 0.01\"\n")
    junit = tmp_path / "junit.xml"
    res = api.gate(run_id, db, [str(pack)], "fail", junit)
    assert res.exit_code == 1
    code, out = cli("gate", run_id, "--db", db, "--pack", pack, columns=200)
    assert code == 1 and "ctl/R1" in out and "\x01" not in out and "\x1b" not in out
    # (a pack id is a plain name since 0.3.0, refused with control characters: test_evidence_review.py)
    import subprocess
    import sys

    err = subprocess.run([sys.executable, "-c", "from audit.cli import main; main()", "runs", "show", "nope\x1b[2J",
                          "--db", str(db)], capture_output=True, text=True)  # main(): the one-line error handler
    assert err.returncode == 2 and "no run 'nope\\x1b[2J'" in err.stderr and "\x1b" not in err.stderr
    root = ET.parse(junit).getroot()  # well-formed XML 1.0
    assert root.find(".//property[@name='model']").get("value") == "vendor\\x1b[31m\\x01"
    assert [c.get("name") for c in root.iter("testcase")] == ["R1: gain \\x1b[1m"]


def test_the_progress_bar_shows_control_characters_in_names_as_text():
    """A review of the store: the progress bar's labels (model and dataset names of campaign cells) and messages
    reached the terminal raw: a model file named with ESC [2J cleared the screen."""
    import io

    from rich.console import Console

    from audit import cli

    sink = io.StringIO()
    bar = cli._progress_bar(Console(file=sink, width=200, force_terminal=False, color_system=None))
    progress = cli._bar_callback(bar)
    with bar:
        progress("v\x1b[2Jx", 0.5, "embedding \x1b]0;owned\x07")
    out = sink.getvalue()
    assert "\x1b" not in out and "\x07" not in out
    assert "v\\x1b[2Jx" in out and "embedding \\x1b]0;owned\\x07" in out


def test_ctrl_c_while_the_command_line_loads_prints_one_line():
    """A review of the store: a Ctrl-C in the seconds the command line spends importing torch and matplotlib
    printed a 30-40-line traceback; the console script says 'aborted' (exit 130)."""
    import subprocess
    import sys

    code = ("import builtins\n"
            "real = builtins.__import__\n"
            "def interrupted(name, *a, **k):\n"
            "    if name == 'audit.cli':\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = interrupted\n"
            "from audit.console import main\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130 and done.stderr == "aborted\n" and done.stdout == ""
