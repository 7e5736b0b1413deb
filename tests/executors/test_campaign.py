"""Campaigns: a matrix into one store, re-runs skip what is done, Ray gives the same numbers as local."""

import pandas as pd
import pytest
import yaml

import audit
from audit import api
from audit.errors import ConfigError
from audit.executors import load_campaign
from audit.store import Store
from audit.threads import cores
from tests.builders import make_onnx


def write_campaign(root, **over):
    spec = {"campaign": "t", "preset": "quick", "seed": 1, "models": ["m/"], "datasets": [str(over.pop("data"))],
            "probes": ["leakage", "identity"], "conditions": ["clean"], "attributes": ["sex"], **over}
    path = root / "campaign.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def models(tmp_path):
    (tmp_path / "m").mkdir()
    for seed in (0, 1):
        make_onnx(tmp_path / "m" / f"vendor{seed}.onnx", seed=seed)
    return tmp_path


def metrics_of(db):
    with Store(db, read_only=True) as s:
        frames = []
        for r in s.runs().itertuples():
            m = s.metrics(r.run_id).drop(columns=["run_id"])
            m.insert(0, "model", r.model)
            frames.append(m)
    return pd.concat(frames).sort_values(list(frames[0].columns)).reset_index(drop=True)


@pytest.mark.slow
def test_local_campaign_skips_completed_cells(models, small_data):
    path = write_campaign(models, data=small_data)
    db = models / "c.duckdb"
    res = api.run_campaign(path, db)
    assert [c["status"] for c in res.cells] == ["completed", "completed"]
    again = api.run_campaign(path, db)
    assert [c["status"] for c in again.cells] == ["skipped", "skipped"]
    assert [c["run_id"] for c in again.cells] == [c["run_id"] for c in res.cells]
    make_onnx(models / "m" / "vendor2.onnx", seed=2)  # a model added later: only its cell runs
    third = api.run_campaign(path, db, out=models / "out", formats=["html"])
    assert [c["status"] for c in third.cells] == ["skipped", "skipped", "completed"]
    assert third.reports and third.reports[0].name.startswith("comparison")


@pytest.mark.slow
def test_ray_executor_stores_exactly_what_local_stores(models, small_data):
    ray = pytest.importorskip("ray")
    path = write_campaign(models, data=small_data)
    local, remote = models / "local.duckdb", models / "ray.duckdb"
    api.run_campaign(path, local)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        from audit.executors.ray_executor import _check_reachable

        _check_reachable(ray.get_runtime_context().gcs_address)  # a real Ray head passes the address check
        res = api.run_campaign(path, remote, executor="ray")
        # a cell reserves as many CPUs as its torch threads: more than a node has would wait for ever
        with pytest.raises(ConfigError, match=r"attack_threads 3: no Ray node has that many CPUs \(the largest has 2"):
            api.run_campaign(write_campaign(models, data=small_data, attack_threads=3), models / "r3.duckdb",
                             executor="ray")
    finally:
        ray.shutdown()
    assert [c["status"] for c in res.cells] == ["completed", "completed"]
    pd.testing.assert_frame_equal(metrics_of(local), metrics_of(remote))
    with Store(remote, read_only=True) as s:
        assert len(s.runs()) == 2 and not s.findings(res.cells[0]["run_id"]).empty
        # one CPU and one torch thread a Ray cell (a local one: every core), each recorded with its run
        assert {s.run(r)["environment"]["compute"]["attack_threads"] for r in s.runs()["run_id"]} == {1}
    with Store(local, read_only=True) as s:
        assert {s.run(r)["environment"]["compute"]["attack_threads"] for r in s.runs()["run_id"]} == {cores()}


def test_failed_cell_is_reported_and_the_others_go_on(models, small_data, sample_model):
    import shutil

    shutil.copy(sample_model("attr-classifier"), models / "m" / "attr.onnx")
    shutil.copy(sample_model("attr-classifier").with_name("attr-classifier.profile.yaml"),
                models / "m" / "attr.profile.yaml")
    for f in list((models / "m").glob("vendor1*")):
        f.unlink()
    path = write_campaign(models, data=small_data)  # identity asked of an attribute model
    res = api.run_campaign(path, models / "c.duckdb")
    status = {c["cell"].split(" x ")[0]: c for c in res.cells}
    assert status["attr"]["status"] == "failed" and "attributes model" in status["attr"]["error"]
    assert status["vendor0"]["status"] == "completed"


@pytest.mark.parametrize("spec,message", [
    ({"models": []}, "field 'models'"),
    ({"models": ["nope.onnx"]}, r"field 'models.0': .*nope.onnx: no such model file"),
    ({"datasets": ["nowhere"]}, r"field 'datasets.0': .*nowhere: no such dataset"),
    ({"preset": "fast"}, "field 'preset'"),
    ({"campaign": "bad id!"}, "field 'campaign'"),
    ({"colour": "red"}, "field 'colour'"),
    ({"attack_precision": "float16"}, "field 'attack_precision'"),
    # names a run would refuse are refused with the file, not as every cell failing at run time
    ({"probes": ["leakage", "identiti"]}, "field 'probes.1': unknown probe 'identiti'"),
    ({"conditions": ["clean", "mask:bogus"]}, "field 'conditions.1': unknown condition"),
    ({"packs": ["baseline", "nopack"]}, "field 'packs.1': rule pack 'nopack' not found"),
    ({"pinned": {"seed": 3}}, "field 'pinned': not a campaign field"),
])
def test_bad_campaign_files_are_one_line_errors(models, small_data, spec, message):
    path = write_campaign(models, data=small_data, **spec)
    with pytest.raises(ConfigError, match=message):
        load_campaign(path)


def test_duplicate_keys_in_a_campaign_file_are_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("campaign: a\nmodels: [x.onnx]\ndatasets: [sample]\nseed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match="duplicate key 'seed'"):
        load_campaign(path)


def test_unreachable_ray_address_is_one_line(models, small_data):
    pytest.importorskip("ray")
    path = write_campaign(models, data=small_data)
    with pytest.raises(ConfigError, match="--address 127.0.0.1:1: cannot reach a Ray cluster"):
        api.run_campaign(path, models / "c.duckdb", executor="ray", address="127.0.0.1:1")
    assert not (models / "c.duckdb").exists()  # nothing written


def test_a_campaign_sets_the_attack_precision_of_every_cell(models, small_data):
    """A regulator comparing models wants every cell's attacks in one precision: the campaign sets it once."""
    cells = api.campaign_cells(load_campaign(write_campaign(models, data=small_data, attack_precision="float32")))
    assert len(cells) == 2 and {c.config.attack_precision for c in cells} == {"float32"}
    assert {c.config.to_record()["resolved"]["attack_precision"] for c in cells} == {"float32"}


@pytest.mark.slow
def test_a_cell_loads_its_models_and_hashes_its_dataset_once(models, small_data, monkeypatch):
    """The campaign loads a cell's inputs to hash them (to skip cells already stored); the local executor runs
    the cell on those same inputs instead of loading the models and reading every image file again."""
    import audit.run.inputs as inputs_mod
    from audit.data.loaders import Dataset

    loads, hashed = [], []
    real_load, real_hashes = inputs_mod.load_model, Dataset.file_hashes.fget

    def counting_hashes(self):
        if self._hashes is None:
            hashed.append(self.source)
        return real_hashes(self)

    monkeypatch.setattr(inputs_mod, "load_model", lambda path, *a, **k: loads.append(path) or real_load(path, *a, **k))
    monkeypatch.setattr(Dataset, "file_hashes", property(counting_hashes))
    (models / "m" / "vendor1.onnx").unlink()  # one cell
    res = api.run_campaign(write_campaign(models, data=small_data), models / "c.duckdb")
    assert [c["status"] for c in res.cells] == ["completed"]
    assert len(loads) == 1 and len(hashed) == 1


@pytest.fixture
def listener():
    """A local listening socket that is not Ray: ``silent`` accepts and says nothing, ``http`` answers as an
    HTTP/1 server would. Only 127.0.0.1 is ever contacted."""
    import socket
    import threading

    servers = []

    def start(kind):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        servers.append(srv)

        def serve():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                if kind == "http":
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                else:
                    while conn.recv(1024):  # read, never answer, until the client gives up
                        pass
        threading.Thread(target=serve, daemon=True).start()
        return f"127.0.0.1:{srv.getsockname()[1]}"

    yield start
    for srv in servers:
        srv.close()


@pytest.mark.parametrize("kind,message", [("silent", "no answer within 3 s"), ("http", "the port answers but is not a Ray cluster")])
def test_a_port_that_is_not_ray_fails_in_one_line_within_seconds(models, small_data, listener, kind, message):
    """Issue 33 item 7: Ray itself waited past 300 s on such a port, warning every 5 s."""
    import time

    address = listener(kind)
    path = write_campaign(models, data=small_data)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"--address {address}: {message}") as err:
        api.run_campaign(path, models / "c.duckdb", executor="ray", address=address)
    assert time.monotonic() - started < 10 and "\n" not in str(err.value)
    assert not (models / "c.duckdb").exists()



def test_the_same_model_or_dataset_under_another_spelling_is_refused(models, small_data):
    """Issue 33 item 9: de-duplication compared path strings, so these ran twice."""
    for spec, message in (
            ({"models": ["m/vendor0.onnx", "m/../m/vendor0.onnx"]}, "field 'models': .* are the same model"),
            ({"models": ["m/vendor0.onnx", str(models / "m" / "vendor0.onnx")]}, "are the same model"),
            ({"datasets": [str(small_data), str(small_data / "manifest.csv")]},
             "field 'datasets': .* are the same dataset")):
        with pytest.raises(ConfigError, match=message):
            load_campaign(write_campaign(models, data=small_data, **spec))


def test_pack_files_resolve_against_the_campaign_file(models, small_data, tmp_path, monkeypatch):
    """Issue 33 item 17: one rule for every path in a campaign file."""
    import shutil

    from audit.rules.engine import PACK_DIR

    (models / "packs").mkdir()
    shutil.copy(PACK_DIR / "baseline.yaml", models / "packs" / "mine.yaml")
    monkeypatch.chdir(tmp_path)
    camp = load_campaign(write_campaign(models, data=small_data, packs=["packs/mine.yaml", "baseline"]))
    assert camp.packs == [str(models / "packs" / "mine.yaml"), "baseline"]


def test_campaign_options_are_checked_before_the_first_cell(models, small_data):
    """Issue 33 item 16: --out pointing to a file and --format xml were found only after every cell ran."""
    path = write_campaign(models, data=small_data)
    (models / "afile").write_text("x")
    with pytest.raises(ConfigError, match="--out .*afile: is a file"):
        api.run_campaign(path, models / "c.duckdb", out=models / "afile")
    with pytest.raises(ConfigError, match=r"--format: unknown format\(s\) \['xml'\]"):
        api.run_campaign(path, models / "c.duckdb", out=models / "out", formats=["xml"])
    assert not (models / "c.duckdb").exists()
    with pytest.raises(ConfigError, match="--out .*new: .*afile is a file"):  # nothing made before the cells
        api.run_campaign(path, models / "c.duckdb", out=models / "afile" / "new")


def test_broken_model_copies_and_same_names_in_one_campaign(models, small_data):
    """Issue 33 items 9, 16, 20: a broken model fails its own cells and the others go on; a copy of a model
    (same content, other file) is run once; two models with one file name are named apart."""
    import shutil

    (models / "other").mkdir()
    shutil.copy(models / "m" / "vendor0.onnx", models / "other" / "vendor0.onnx")
    (models / "other" / "broken.onnx").write_bytes(b"not onnx")
    path = write_campaign(models, data=small_data, models=["m/vendor0.onnx", "other/vendor0.onnx",
                                                           "other/broken.onnx"])
    res = api.run_campaign(path, models / "c.duckdb", out=models / "rep", formats=["html"])
    by = {c["cell"].split(" x ")[0]: c for c in res.cells}
    assert set(by) == {"m/vendor0", "other/vendor0", "other/broken"}
    assert res.reports == []  # one distinct run: nothing to compare (it was compared with itself)
    assert not (models / "rep").exists()  # no comparison written, no --out made (it was made before the cells ran)
    assert by["m/vendor0"]["status"] == "completed"
    assert by["other/vendor0"]["status"] == "skipped" and by["other/vendor0"]["same_as"].startswith("m/vendor0")
    assert by["other/vendor0"]["run_id"] == by["m/vendor0"]["run_id"]
    assert by["other/broken"]["status"] == "failed" and "broken.onnx" in by["other/broken"]["error"]



def test_a_ray_cell_that_fails_hands_back_its_failed_run(models, small_data, monkeypatch, tmp_path):
    """Issue 33 item 15: with Ray a cell failing mid-run left no run record; local stores it 'failed'. The worker
    function (run here in-process, a probe made to crash) now returns the failed run's rows for the head."""
    from audit.executors import load_campaign
    from audit.executors.ray_executor import _run_cell
    from audit.store.transfer import import_run

    def crash(*args, **kwargs):
        raise RuntimeError("the embedding pass crashed")
    monkeypatch.setattr("audit.run.pipeline.Embeddings", crash)
    cell = api.campaign_cells(load_campaign(write_campaign(models, data=small_data)))[0]
    out = _run_cell(cell.config.model_dump_json(), cell.label)
    assert out["run_id"] and out["error"] == "RuntimeError: the embedding pass crashed" and out["tables"]
    with Store(tmp_path / "head.duckdb") as store:
        import_run(store, out["tables"])
        run = store.run(out["run_id"])
    assert run["status"] == "failed" and "embedding pass crashed" in run["error"]


def test_campaign_cells_carry_reference_models_and_the_membership_set(models, tmp_path):
    """``reference_models`` (relative to the campaign file, like surrogates) reach every cell's config;
    ``sample-membership`` is a dataset entry like ``sample``; a missing reference model is one line naming the
    field."""
    make_onnx(models / "ref.onnx", seed=7)
    path = write_campaign(models, data="sample-membership", probes=["membership"], reference_models=["ref.onnx"])
    camp = load_campaign(path)
    assert camp.datasets == ["sample-membership"] and camp.reference_models == [str(models / "ref.onnx")]
    cells = api.campaign_cells(camp)
    assert len(cells) == 2 and {c.label.split(" x ")[1] for c in cells} == {"sample-membership"}
    assert all(c.config.data == "sample-membership" and c.config.probes == ["membership"]
               and [str(p) for p in c.config.reference_models] == [str(models / "ref.onnx")] for c in cells)
    plain = api.campaign_cells(load_campaign(write_campaign(models, data="sample-membership", probes=["membership"])))
    assert plain[0].config.reference_models == [] and "reference_models" not in plain[0].config.to_record()
    with pytest.raises(ConfigError) as err:
        load_campaign(write_campaign(models, data="sample", reference_models=["nope.onnx"]))
    assert f"{path}: field 'reference_models.0':" in str(err.value) and "no such model file" in str(err.value)


def _fail_embedding_of(monkeypatch, model_name, exc):
    """The embedding pass of ``model_name`` raises ``exc`` (no real model makes onnxruntime raise anything but the
    ModelError the backends turn its errors into); other models run as usual."""
    import audit.run.pipeline as pipeline

    real = pipeline.Embeddings

    def embeddings(store, model, dataset, faces, config):
        if model.info.path.name == model_name:
            raise exc
        return real(store, model, dataset, faces, config)
    monkeypatch.setattr(pipeline, "Embeddings", embeddings)


def test_an_unexpected_crash_in_a_local_cell_fails_that_cell_and_the_others_go_on(models, small_data, monkeypatch):
    """The local executor caught only FaceAuditError: any other exception ended the whole campaign. Now it is
    that cell's failure, with the run it stored, as with Ray."""
    _fail_embedding_of(monkeypatch, "vendor0.onnx", RuntimeError("onnxruntime: bad alloc"))
    db = models / "c.duckdb"
    res = api.run_campaign(write_campaign(models, data=small_data, probes=["identity"]), db)
    by = {c["cell"].split(" x ")[0]: c for c in res.cells}
    assert by["vendor0"]["status"] == "failed" and by["vendor0"]["error"] == "RuntimeError: onnxruntime: bad alloc"
    assert by["vendor1"]["status"] == "completed"
    with Store(db, read_only=True) as s:
        assert s.run(by["vendor0"]["run_id"])["status"] == "failed"
        assert s.run(by["vendor1"]["run_id"])["status"] == "completed"


def test_ctrl_c_in_a_local_cell_stops_the_campaign(models, small_data, monkeypatch):
    """Ctrl-C (run_audit's Cancelled) went on with the next cell; now the campaign stops with the cell's run stored
    cancelled, as a single run is, and no later cell starts."""
    from audit.run import Cancelled

    _fail_embedding_of(monkeypatch, "vendor0.onnx", KeyboardInterrupt())
    db = models / "c.duckdb"
    with pytest.raises(Cancelled):
        api.run_campaign(write_campaign(models, data=small_data, probes=["identity"]), db)
    with Store(db, read_only=True) as s:
        runs = s.runs()
    assert runs["model"].tolist() == ["vendor0"] and runs["status"].tolist() == ["cancelled"]


def test_a_rerun_applies_the_campaign_packs_a_completed_run_lacks(models, small_data):
    """A cell skipped as already completed got the campaign's packs only when it had no findings at all; a pack
    added to the campaign since was never applied to it (the summary and comparison then lacked it)."""
    db = models / "c.duckdb"
    first = api.run_campaign(write_campaign(models, data=small_data, probes=["identity"], packs=["baseline"]), db)
    again = api.run_campaign(write_campaign(models, data=small_data, probes=["identity"],
                                            packs=["baseline", "eu-ai-act"]), db)
    assert [c["status"] for c in again.cells] == ["skipped", "skipped"]
    with Store(db, read_only=True) as s:
        for c in first.cells:
            assert set(s.findings(c["run_id"])["pack"]) == {"baseline", "eu-ai-act"}
    # Findings an earlier faceaudit judged are judged again by this one (its verdicts may differ on the same pack).
    with Store(db) as s:
        s.con.execute("UPDATE findings SET judged_by = '0.3.0'")
    api.run_campaign(write_campaign(models, data=small_data, probes=["identity"], packs=["baseline"]), db)
    with Store(db, read_only=True) as s:
        for c in first.cells:
            found = s.findings(c["run_id"])
            assert set(found.loc[found["pack"] == "baseline", "judged_by"]) == {audit.__version__}
            assert set(found.loc[found["pack"] == "eu-ai-act", "judged_by"]) == {"0.3.0"}
    # A run another minor version made holds numbers that mean something else: its cell runs again (a patch's is kept).
    major, minor, _ = audit.__version__.split(".")
    with Store(db) as s:
        s.con.execute("UPDATE runs SET environment = json_object('faceaudit', ?) WHERE run_id = ?",
                      [f"{major}.{int(minor) - 1}.0", first.cells[0]["run_id"]])
        s.con.execute("UPDATE runs SET environment = json_object('faceaudit', ?) WHERE run_id = ?",
                      [f"{major}.{minor}.99", first.cells[1]["run_id"]])
    third = api.run_campaign(write_campaign(models, data=small_data, probes=["identity"], packs=["baseline"]), db)
    assert [c["status"] for c in third.cells] == ["completed", "skipped"]
    assert third.cells[0]["run_id"] != first.cells[0]["run_id"] and third.cells[1]["run_id"] == first.cells[1]["run_id"]


def test_every_model_and_dataset_gets_its_own_label(tmp_path):
    """Cells are keyed by label in the campaign's summary: two entries with one label would merge two models'
    cells. Same names in other folders get their parent folder; models that differ only in their extension keep
    it; a lone model is named by its stem."""
    from audit.executors.cells import _labels

    root = tmp_path / "m"
    models = [str(root / "vendor.onnx"), str(root / "vendor.ort"), str(root / "a" / "x.onnx"),
              str(root / "b" / "x.onnx")]
    names = _labels(models, [str(tmp_path / "d1" / "eval"), str(tmp_path / "d2" / "eval"), "sample"])
    assert len(set(names.values())) == len(names)
    assert [names[m] for m in models] == ["m/vendor.onnx", "m/vendor.ort", "a/x.onnx", "b/x.onnx"]
    assert _labels(models[:2], []) == {models[0]: "vendor.onnx", models[1]: "vendor.ort"}
    assert names[str(tmp_path / "d1" / "eval")] == "d1/eval" and names["sample"] == "sample"
    assert _labels([str(root / "vendor.onnx")], []) == {str(root / "vendor.onnx"): "vendor"}
    assert _labels([str(root / "a" / "x.onnx"), str(root / "b" / "x.onnx")], []) == {
        str(root / "a" / "x.onnx"): "a/x", str(root / "b" / "x.onnx"): "b/x"}


def test_two_campaign_packs_with_one_id_are_refused_before_any_cell(models, small_data):
    """Findings are stored per pack id: the second pack would replace the first's. Refused up front (it was
    found only after every cell had run, each then failing)."""
    from audit.errors import RuleError

    for name in ("x1", "x2"):
        (models / f"{name}.yaml").write_text(yaml.safe_dump({"pack": "mine", "version": "1", "rules": [
            {"id": f"R-{name.upper()}", "title": "t", "probe": "identity", "metric": "roc_auc", "fail_if": "> 2"}]}))
    path = write_campaign(models, data=small_data, packs=["x1.yaml", "x2.yaml"])
    with pytest.raises(RuleError, match="id 'mine' is also the id of"):
        api.run_campaign(path, models / "c.duckdb")
    assert not (models / "c.duckdb").exists()
