"""The CLI through its public surface: exit codes and one-line messages."""

import pytest
from typer.testing import CliRunner

from audit.cli import app

runner = CliRunner()


def run_cli(*args):
    # main() turns FaceAuditError into a one-line message; CliRunner calls the app, so mirror that.
    from audit.errors import FaceAuditError

    result = runner.invoke(app, list(map(str, args)), env={"COLUMNS": "250"})
    if isinstance(result.exception, FaceAuditError):
        return 2, str(result.exception)
    return result.exit_code, result.output


def test_inspect_prints_facts_and_marks_guesses(tiny_model):
    code, out = run_cli("inspect", tiny_model)
    assert code == 0
    assert "sha256" in out and "opset" in out and "INFERRED" in out and "(guess)" in out


def test_inspect_write_profile(tiny_model):
    code, out = run_cli("inspect", tiny_model, "--write-profile")
    assert code == 0 and tiny_model.with_name("tiny.profile.yaml").is_file()
    code, out = run_cli("inspect", tiny_model)
    assert "from file" in out
    code, out = run_cli("inspect", tiny_model, "--write-profile")
    assert code == 2 and "already exists" in out


def test_main_prints_one_line_without_traceback(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage" * 10)
    proc = subprocess.run([sys.executable, "-m", "audit.cli", "inspect", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "bad.onnx: not a valid ONNX file" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "audit.cli", "--debug", "inspect", str(bad)], capture_output=True,
                          text=True)
    assert "Traceback" in proc.stderr


def test_run_bad_arguments_write_nothing(tiny_model, small_data, tmp_path):
    db = tmp_path / "s.duckdb"
    for args, msg in [(["--probes", "leakage,telepathy"], "unknown probe 'telepathy'"),
                      (["--conditions", "clean,mask:bandana"], "unknown condition"),
                      (["--attributes", "sex,eye_colour"], "'eye_colour' not among the attributes of"),
                      (["--preset", "fast"], "--preset"),
                      (["--attack-precision", "float16"], "--attack-precision: Input should be 'auto'")]:
        code, out = run_cli("run", "--model", tiny_model, "--data", small_data, "--db", db, *args)
        assert code == 2 and msg in out, out
    assert not db.exists()


def test_identity_needs_two_images_per_person(tiny_model, tmp_path):
    import cv2
    import numpy as np
    import pandas as pd

    folder = tmp_path / "one"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.jpg"), np.full((112, 112, 3), 20 * i, np.uint8))
    pd.DataFrame({"image": [f"{i}.jpg" for i in range(6)], "subject": [f"p{i}" for i in range(6)],
                  "sex": ["f", "m"] * 3}).to_csv(folder / "manifest.csv", index=False)
    code, out = run_cli("run", "--model", tiny_model, "--data", folder, "--probes", "identity", "--db",
                        tmp_path / "s.duckdb")
    assert code == 2 and "needs at least two images of a person" in out


def test_runs_list_on_a_missing_store_is_an_error_and_on_an_empty_one_says_how_to_start(tmp_path):
    for extra in ([], ["--json"]):  # a mistyped --db: never "no runs" or [] with exit 0
        code, out = run_cli("runs", "list", "--db", tmp_path / "none.duckdb", *extra)
        assert code == 2 and "no such database" in out and "faceaudit demo" in out
    from audit.store import Store

    with Store(tmp_path / "empty.duckdb"):
        pass
    code, out = run_cli("runs", "list", "--db", tmp_path / "empty.duckdb")
    assert code == 0 and "no runs in" in out and "faceaudit demo" in out


@pytest.mark.slow
def test_run_then_list_show_and_report(tiny_model, small_data, tmp_path):
    db = tmp_path / "s.duckdb"
    code, out = run_cli("run", "--model", tiny_model, "--data", small_data, "--db", db, "--conditions",
                        "clean,mask:n95", "--pack", "baseline")
    assert code == 0, out
    assert "completed" in out
    code, out = run_cli("runs", "list", "--db", db)
    assert "tiny" in out and "completed" in out
    code, out = run_cli("run", "--model", tiny_model, "--data", small_data, "--db", db, "--conditions",
                        "clean,mask:n95", "--pack", "baseline", "--resume", "latest")
    assert code == 0 and "was already completed (no probe ran again)" in out, out
    code, out = run_cli("runs", "show", "latest", "--db", db, "--all")
    assert "normalised_gain" in out and "SANITY-CONTROL-AT-CHANCE" in out
    code, out = run_cli("report", "latest", "--db", db, "--out", tmp_path / "r", "--format", "html",
                        "--pack", "iso-biometrics")
    assert code == 0 and (tmp_path / "r").glob("*.html")


def test_rules_check_and_list(tmp_path):
    code, out = run_cli("rules", "list")
    assert code == 0 and "baseline" in out and "eu-ai-act" in out and "iso-biometrics" in out
    bad = tmp_path / "p.yaml"
    bad.write_text("pack: p\nrules:\n  - id: X1\n    title: t\n    probe: leakage\n    metric: nope\n    "
                   "fail_if: '> 1'\n")
    code, out = run_cli("rules", "check", bad)
    assert code == 2 and "rule X1: field 'metric'" in out


def test_inferred_heads_come_with_a_mapping_hint(tmp_path):
    """Heads named after output tensors cannot be judged: inspect says how to name them, rules metrics lists names."""
    from tests.builders import make_onnx

    model = make_onnx(tmp_path / "attr.onnx", out_dim=2, outputs=2)  # two small outputs -> an attributes model
    code, out = run_cli("inspect", model)
    assert code == 0 and "no rule can judge them" in out and "sex" in out and "skin_tone" in out
    code, out = run_cli("rules", "metrics")
    assert code == 0 and "attribute names the shipped packs judge: age, control, race, sex, skin_tone" in out


def test_data_sample_says_so_when_a_folder_of_that_name_is_here(tmp_path, monkeypatch, small_data):
    """A review of the input handling: '--data sample' with a folder ./sample of one's own audited the embedded
    synthetic set without a word."""
    import pytest

    from audit.errors import FaceAuditWarning
    from audit.run import inputs

    monkeypatch.setattr(inputs, "sample_data", lambda membership=False: (small_data, None, None))
    monkeypatch.chdir(tmp_path)
    import warnings

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert inputs.resolve_dataset("sample").root == small_data
    assert not [w for w in said if issubclass(w.category, FaceAuditWarning)]  # no folder here: no word
    (tmp_path / "sample").mkdir()
    with pytest.warns(FaceAuditWarning, match=r"--data sample: the embedded synthetic set, not the folder ./sample "
                                              r"here \(give --data ./sample to audit that\)"):
        inputs.resolve_dataset("sample")
