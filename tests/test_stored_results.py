"""Issue 11, class 1: stored results are never mixed (resume) and reports never overwrite each other."""

import threading

import pytest

from audit import api
from audit.config import AuditConfig, resume_conflicts
from audit.errors import ConfigError
from audit.models import load as load_model
from audit.paths import free_stem
from audit.report.build import comparison_name, report_name, write_files
from audit.run.inputs import Inputs, content_hashes
from audit.store import Store
from tests.builders import make_onnx


@pytest.fixture
def stored_run(tiny_model, small_data, tmp_path):
    """An interrupted run stored the way run_audit stores it, without running a probe."""
    cfg = AuditConfig(model=tiny_model, data=str(small_data), probes=["leakage"], conditions=["clean"], seed=7)
    model = load_model(tiny_model)
    dataset = api.resolve_dataset(str(small_data))
    record = {**cfg.to_record(), "inputs": content_hashes(Inputs(model, {"evaluator": None, "attacker_model": None,
                                                                          "attribute_model": None}, [], dataset))}
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        run_id = s.create_run(model.info.sha256, dataset.dataset_id, record, cfg.seed, {})
        s.set_run_status(run_id, "interrupted")
    return cfg, db, run_id


def test_resume_refuses_other_seed_and_model(stored_run, tmp_path):
    cfg, db, run_id = stored_run
    other = make_onnx(tmp_path / "other.onnx", seed=3)
    for change, named in [({"seed": 3}, "seed (stored 7, given 3)"), ({"model": other}, "model (a different file"),
                          ({"probes": ["leakage", "identity"]}, "probes"), ({"preset": "standard"}, "preset"),
                          ({"conditions": ["clean", "mask:n95"]}, "conditions"), ({"bootstrap": 50}, "bootstrap")]:
        with pytest.raises(ConfigError, match="refusing") as err:
            api.run_audit(cfg.model_copy(update=change), db, resume=run_id)
        assert named in str(err.value) and "\n" not in str(err.value)
    with Store(db, read_only=True) as s:
        assert s.run(run_id)["status"] == "interrupted" and s.metrics(run_id).empty
        assert s.df("SELECT count(*) AS n FROM models")["n"][0] == 0  # refused before anything was written


def test_resume_with_same_settings_goes_on(stored_run):
    cfg, db, run_id = stored_run
    cancel = threading.Event()
    cancel.set()  # passes the check, then stops before the first probe
    with pytest.raises(api.Cancelled):
        api.run_audit(cfg.model_copy(update={"device": "cpu", "batch_size": 8}), db, cancel=cancel, resume=run_id)


def test_resume_conflicts_ignores_speed_settings():
    a = {"seed": 1, "device": "cpu", "batch_size": 64, "inputs": {"model": "x"}}
    assert resume_conflicts(a, {**a, "device": "cuda", "batch_size": 8}) == []
    assert resume_conflicts(a, {**a, "inputs": {"model": "y"}}) == ["model (a different file from the stored run's)"]


def test_report_names_keep_the_run_id_and_never_overwrite(tmp_path):
    stem = tmp_path / "report-vendor-fr-v3.2-20261124-101010-abcdef"
    html = write_files("<p>x</p>", stem, ["html"], lambda p, t: (p.write_text(t), p)[1], None)[0]
    assert html.name == "report-vendor-fr-v3.2-20261124-101010-abcdef.html"
    again = free_stem(stem, [".html", ".pdf"])
    assert again.name.endswith("abcdef-2")
    assert free_stem(tmp_path / "fresh", [".html"]).name == "fresh"


def test_a_one_probe_run_names_its_probe_in_the_report_name():
    run = {"run_id": "20261205-101010-abcdef", "model_name": "fr baseline", "config": {"probes": ["membership"]}}
    assert report_name(run) == "report-fr_baseline-membership-20261205-101010-abcdef"
    battery = {**run, "config": {"probes": ["leakage", "identity", "membership"]}}
    assert report_name(battery) == "report-fr_baseline-20261205-101010-abcdef"
    assert report_name({**run, "config": {"probes": ["../x"]}}) == "report-fr_baseline-.._x-20261205-101010-abcdef"


def test_comparison_name_holds_every_run_id():
    ids = [f"20261124-1010{i:02d}-abcdef" for i in range(3)]
    assert comparison_name(ids) == "comparison-" + "-".join(ids)
    many = [f"20261124-1010{i:02d}-abcdef" for i in range(12)]
    name = comparison_name(many)
    assert len(name) < 200 and many[0] in name and "and-10-more" in name


def test_out_pointing_at_a_file_is_one_line(stored_run, tmp_path):
    _, db, run_id = stored_run
    f = tmp_path / "afile"
    f.write_text("x")
    for call in (lambda: api.build_report(run_id, db, f, ["html"]), lambda: api.compare([run_id, run_id], db, f)):
        with pytest.raises(ConfigError, match="is a file"):
            call()


def test_the_run_records_its_resolved_attack_precision_and_resume_holds_to_it(tmp_path):
    """'auto' is stored resolved (another machine may resolve it differently), and a run may not resume in another
    precision: the attacks' numbers would change."""
    auto = AuditConfig(model=tmp_path / "m.onnx").to_record()
    assert auto["attack_precision"] == "auto" and auto["resolved"]["attack_precision"] in ("float32", "bfloat16")
    explicit = AuditConfig(model=tmp_path / "m.onnx", attack_precision="float32").to_record()
    assert explicit["resolved"]["attack_precision"] == "float32"
    other = AuditConfig(model=tmp_path / "m.onnx", attack_precision="bfloat16").to_record()
    assert [c.split(" ")[0] for c in resume_conflicts(explicit, other)] == ["attack_precision", "resolved"]
