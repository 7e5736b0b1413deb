"""Issue 11, class 9: numbers on the command line are validated, and the message names the option."""

import pytest

from tests.test_cli import run_cli


@pytest.mark.parametrize("args, option", [
    (["--seed", "-1"], "--seed"), (["--seed", str(2**64)], "--seed"),
    (["--cloak-eps", "nan"], "--cloak-eps"), (["--cloak-eps", "8,-1"], "--cloak-eps"),
    (["--cloak-eps", "inf"], "--cloak-eps"), (["--cloak-eps", "300"], "--cloak-eps"),
    (["--cloak-eps", "eight"], "--cloak-eps"),
])
def test_run_numbers(tiny_model, tmp_path, args, option):
    db = tmp_path / "s.duckdb"
    code, out = run_cli("run", "--model", tiny_model, "--db", db, *args)
    assert code == 2 and out.startswith(option + ":") and "\n" not in out.strip(), out
    assert not db.exists()


@pytest.mark.parametrize("args, option", [(["--people", "0"], "--people"), (["--people", "-3"], "--people"),
                                          (["--images", "0"], "--images"), (["--people", "10000000"], "--people")])
def test_sample_data_numbers(tmp_path, args, option):
    out_dir = tmp_path / "sd"
    code, out = run_cli("sample-data", "--out", out_dir, *args)
    assert code == 2 and out.startswith(option + ":"), out
    assert not out_dir.exists()


def test_demo_seed_refused_before_writing(tmp_path):
    code, out = run_cli("demo", "--out", tmp_path / "d", "--seed", "-5")
    assert code == 2 and out.startswith("--seed:") and "got -5" in out
    assert not (tmp_path / "d").exists()


def test_run_refuses_a_bad_pack_before_running(tiny_model, tmp_path):
    db = tmp_path / "s.duckdb"
    code, out = run_cli("run", "--model", tiny_model, "--db", db, "--pack", "no-such-pack")
    assert code == 2 and "rule pack 'no-such-pack' not found" in out and "rules/" not in out and not db.exists()


def test_repeated_choices_run_once():
    from audit.config import AuditConfig

    c = AuditConfig(model="m.onnx", probes=["leakage", "leakage"], conditions=["mask:n95", "clean", "mask:n95"],
                    attributes=["sex", "sex"], cloak_eps=[8, 8.0])
    assert (c.probes, c.conditions, c.attributes, c.cloak_eps) == (["leakage"], ["clean", "mask:n95"], ["sex"], [8.0])


def test_a_folder_given_for_a_file_is_named_as_a_folder_and_a_bad_value_shown_once(tiny_model, tmp_path):
    code, out = run_cli("inspect", tmp_path)
    assert code == 2 and f"{tmp_path}: is a folder; give the model's .onnx file" in out
    code, out = run_cli("inspect", tiny_model, "--profile", tmp_path)
    assert code == 2 and f"{tmp_path}: is a folder; give the profile YAML file" in out
    code, out = run_cli("run", "--model", tiny_model, "--detector", "mtcn", "--db", tmp_path / "s.duckdb")
    assert code == 2 and out.count("'mtcn'") == 1, out


def test_inspect_refuses_data_it_would_not_use(tiny_model, small_data):
    code, out = run_cli("inspect", tiny_model, "--data", small_data)
    assert code == 2 and out.startswith("--data: used only by --calibrate")
