"""Issue 11, class 6: every I/O failure is one line naming the path, exit code 2, nothing half-written."""

import sys

import pytest

from audit import api, cli
from audit.errors import ConfigError
from audit.report.build import write_files
from tests.test_cli import run_cli


def main(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["faceaudit", *map(str, args)])
    monkeypatch.setitem(cli.STATE, "debug", False)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err
    return exit_.value.code, err


@pytest.mark.parametrize("command", [["sample-data", "--people", "2", "--images", "1"], ["demo"]])
def test_out_pointing_at_a_file(tmp_path, command):
    f = tmp_path / "afile"
    f.write_text("keep")
    code, out = run_cli(*command, "--out", f)
    assert code == 2 and "is a file" in out and f.read_text() == "keep"


def test_sample_data_never_replaces_a_foreign_folder(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("years of work")
    code, out = run_cli("sample-data", "--out", mine, "--people", "2", "--images", "1")
    assert code == 2 and "refusing to replace it" in out
    assert (mine / "thesis.docx").read_text() == "years of work"


def test_non_utf8_inputs(tmp_path, tiny_model):
    pack = tmp_path / "p.yaml"
    pack.write_bytes(b"pack: \xff\n")
    code, out = run_cli("rules", "check", pack)
    assert code == 2 and "not UTF-8" in out
    tiny_model.with_name("tiny.profile.yaml").write_bytes(b"name: \xfe\n")
    code, out = run_cli("inspect", tiny_model)
    assert code == 2 and "not UTF-8" in out and "tiny.profile.yaml" in out
    tiny_model.with_name("tiny.profile.yaml").unlink()
    data = tmp_path / "ds"
    data.mkdir()
    (data / "manifest.csv").write_bytes(b"image,subject\n\xff.jpg,a\n")
    code, out = run_cli("run", "--model", tiny_model, "--data", data, "--db", tmp_path / "s.duckdb")
    assert code == 2 and "manifest.csv" in out and "\n" not in out.strip()


def test_folder_given_as_a_file(tmp_path):
    code, out = run_cli("rules", "check", tmp_path)
    assert code == 2 and "is a folder" in out


def test_unexpected_os_errors_are_one_line(monkeypatch, capsys, tmp_path):
    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "m.onnx"))

    monkeypatch.setattr(api, "inspect_model", denied)
    code, err = main(monkeypatch, capsys, "inspect", tmp_path / "m.onnx")
    assert code == 2 and "m.onnx: Permission denied" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_disk_full_leaves_no_partial(tmp_path):
    def full(path, text):
        path.with_name(path.name + ".partial").write_text(text[:3])
        raise OSError(28, "No space left on device")

    with pytest.raises(ConfigError, match="No space left on device"):
        write_files("<p>x</p>", tmp_path / "report-x-1", ["html"], full, None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, expected", [(["run", "--model", "m.onnx", "--seed", "abc"], "Invalid value for '--seed'"),
                                            (["inspect", "m.onnx", "--bogus"], "No such option: --bogus"),
                                            (["nosuch"], "No such command 'nosuch'")])
def test_usage_errors_are_one_line(monkeypatch, capsys, args, expected):
    code, err = main(monkeypatch, capsys, *args)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_exit_codes_of_commands_survive(monkeypatch, capsys):
    code, _ = main(monkeypatch, capsys, "rules", "list")
    assert code == 0


def test_store_errors_no_entry_point_named_are_one_line(monkeypatch, capsys, tmp_path):
    import duckdb

    def full(*a, **k):
        raise duckdb.IOException("IO Error: Could not write file \"s.duckdb\": No space left on device\nmore")

    monkeypatch.setattr(api, "list_runs", full)
    (tmp_path / "s.duckdb").write_bytes(b"")  # a store that exists (a missing one is refused before it is read)
    code, err = main(monkeypatch, capsys, "runs", "list", "--db", str(tmp_path / "s.duckdb"))
    assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1
