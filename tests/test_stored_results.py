"""Issue 11, class 1: stored results are never mixed (resume) and reports never overwrite each other."""

import threading

import pytest

import audit
from audit import api
from audit.config import AuditConfig, resume_conflicts
from audit.errors import ConfigError
from audit.models import load as load_model
from audit.paths import claimed_stem
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
        run_id = s.create_run(model.info.sha256, dataset.dataset_id, record, cfg.seed, {"faceaudit": audit.__version__})
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


def test_resume_refuses_a_run_another_minor_version_started(stored_run):
    """A review of the store: a run cancelled under one release and resumed by the next held probes of both, and its
    environment named only the first. A release whose stored numbers mean something else (another minor version)
    may not go on with it; a patch release may."""
    cfg, db, run_id = stored_run
    major, minor, _ = audit.__version__.split(".")
    for version, refused in ((f"{major}.{int(minor) - 1}.9", True), (f"{major}.{minor}.99", False)):
        with Store(db) as s:
            s.con.execute("UPDATE runs SET environment = ? WHERE run_id = ?", [f'{{"faceaudit": "{version}"}}', run_id])
        cancel = threading.Event()
        cancel.set()  # passes the check, then stops before the first probe
        if refused:
            with pytest.raises(ConfigError, match=rf"started by faceaudit {version}, whose stored numbers mean "
                                                  r"something other than this faceaudit's") as err:
                api.run_audit(cfg, db, cancel=cancel, resume=run_id)
            assert "\n" not in str(err.value)
        else:
            with pytest.raises(api.Cancelled):
                api.run_audit(cfg, db, cancel=cancel, resume=run_id)


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
    with claimed_stem(stem, [".html", ".pdf"]) as again:
        assert again.name.endswith("abcdef-2")
    with claimed_stem(tmp_path / "fresh", [".html"]) as fresh:
        assert fresh.name == "fresh"


def test_two_renderings_at_once_claim_different_names_and_leave_no_empty_claim(tmp_path):
    """A review of the store: two 'faceaudit report' commands at once both chose the first free name, both said
    'wrote ...-2.html', and one file replaced the other. Names are claimed when chosen; a claim not written is
    removed when the rendering ends, and a failed rendering leaves nothing."""
    stem = tmp_path / "report-m-r"
    with claimed_stem(stem, [".html", ".pdf"]) as first, claimed_stem(stem, [".html", ".pdf"]) as second:
        assert (first.name, second.name) == ("report-m-r", "report-m-r-2")
        (first.with_name(first.name + ".html")).write_text("a")  # the first writes its HTML only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report-m-r.html"]
    with pytest.raises(RuntimeError):
        with claimed_stem(stem, [".html"]) as third:
            assert third.name == "report-m-r-2"
            raise RuntimeError("renderer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report-m-r.html"]
    # A suffix given twice (--format html,html) is one file, claimed once (a review: it looped forever).
    with claimed_stem(stem, [".html", ".html"]) as fourth:
        assert fourth.name == "report-m-r-2"


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


def _cancelled_at(cfg, db, step):
    """Run ``cfg`` into ``db`` and cancel it when ``step`` reports progress; returns the run id."""
    cancel = threading.Event()

    def progress(probe, fraction, message):
        if probe == step:
            cancel.set()

    with pytest.raises(api.Cancelled):
        api.run_audit(cfg, db, progress, cancel)
    with Store(db, read_only=True) as s:
        return s.resolve_run("latest")


def test_a_run_cancelled_in_its_embedding_pass_stores_its_run_results_when_resumed(tiny_model, small_data,
                                                                                   tmp_path):
    """The preprocessing check, what the run used and the examples are written after the embedding pass; a run
    stopped inside it stores them when resumed, as a run never stopped does."""
    cfg = AuditConfig(model=tiny_model, data=str(small_data), probes=["leakage"], conditions=["clean"],
                      bootstrap=20, mlp_epochs=3, folds=2, attributes=["sex"])
    fresh = api.run_audit(cfg, tmp_path / "fresh.duckdb")
    db = tmp_path / "s.duckdb"
    run_id = _cancelled_at(cfg, db, "preprocessing")  # then the first step of the embedding pass stops it
    with Store(db, read_only=True) as s:
        assert s.artifacts(run_id).empty
    api.run_audit(cfg, db, resume=run_id)
    names = {}
    for path, rid in ((tmp_path / "fresh.duckdb", fresh), (db, run_id)):
        with Store(path, read_only=True) as s:
            names[rid] = sorted(s.artifacts(rid)["probe"] + "/" + s.artifacts(rid)["name"])
    assert names[run_id] == names[fresh] and "models/preprocessing.json" in names[run_id]


def test_resume_refuses_a_reference_model_the_run_did_not_start_with(tiny_model, small_data, tmp_path):
    """Inputs recorded only when given (reference models) count too: the membership probe of a run started
    without them would otherwise be calibrated by a model its stored record never names."""
    cfg = AuditConfig(model=tiny_model, data=str(small_data), probes=["leakage"], conditions=["clean"],
                      bootstrap=20, mlp_epochs=3, folds=2, attributes=["sex"])
    db = tmp_path / "s.duckdb"
    run_id = _cancelled_at(cfg, db, "leakage")
    ref = make_onnx(tmp_path / "reference.onnx", seed=5)
    with pytest.raises(ConfigError, match=r"reference_models \(given, the stored run had none\)"):
        api.run_audit(cfg.model_copy(update={"reference_models": [ref]}), db, resume=run_id)
    a = {"seed": 1, "inputs": {"model": "x", "profile": "p"}}
    assert resume_conflicts(a, {**a, "inputs": {"model": "x", "profile": "p", "reference_models": []}}) == []
    old = {"seed": 1, "inputs": {"model": "x"}}  # recorded before every input was: compared on what it has
    assert resume_conflicts(old, {**old, "inputs": {"model": "x", "profile": "p"}}) == []


def test_findings_judged_on_an_unfinished_run_do_not_outlive_its_resume(tiny_model, small_data, tmp_path):
    """A pack applied while the run was half done judged only its first probe; once the run is resumed those
    verdicts are gone (and could not be signed), and the packs applied to the finished run judge everything."""
    cfg = AuditConfig(model=tiny_model, data=str(small_data), probes=["leakage", "identity"], conditions=["clean"],
                      bootstrap=20, mlp_epochs=3, folds=2, attributes=["sex"])
    db = tmp_path / "s.duckdb"
    run_id = _cancelled_at(cfg, db, "identity")
    assert set(api.evaluate_rules(run_id, db, ["iso-biometrics"])["pack"]) == {"iso-biometrics"}
    api.run_audit(cfg, db, resume=run_id)
    with Store(db, read_only=True) as s:
        assert s.findings(run_id).empty
    findings = api.evaluate_rules(run_id, db, ["baseline"])
    assert set(findings["pack"]) == {"baseline"}
    api.run_audit(cfg, db, resume=run_id)  # resuming a finished run adds nothing: its findings stay
    with Store(db, read_only=True) as s:
        assert len(s.findings(run_id)) == len(findings)


def test_a_runs_export_lists_only_the_data_problems_it_found(tiny_model, small_data, tmp_path):
    """Files a run never decoded are not its problems: a later run on the same dataset that decodes more (and
    finds more broken files) leaves the earlier run's export as it was, byte for byte."""
    import json
    import shutil

    import pandas as pd

    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    manifest = pd.read_csv(data / "manifest.csv")
    for image in manifest.groupby("subject")["image"].first():  # one broken image per person: the header decodes
        path = data / image
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    db = tmp_path / "s.duckdb"
    cfg = AuditConfig(model=tiny_model, data=str(data), probes=["leakage"], conditions=["clean"], bootstrap=20,
                      mlp_epochs=3, folds=2, attributes=["sex"])
    a = api.run_audit(cfg.model_copy(update={"max_subjects": 20}), db)
    before = api.export_run(a, db, tmp_path / "before")[0].read_bytes()
    api.run_audit(cfg, db)
    after = api.export_run(a, db, tmp_path / "after")[0].read_bytes()
    assert before == after
    with Store(db, read_only=True) as s:
        assert len(s.data_quality(s.run(a)["dataset_id"])) > len(json.loads(before)["data_quality"]) > 0
