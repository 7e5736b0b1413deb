"""The run lifecycle through audit.api: cancel keeps finished probes, resume completes the run."""

import json
import threading

import pytest

from audit import api
from audit.config import AuditConfig
from audit.store import Store


@pytest.mark.slow
def test_cancel_then_resume(tiny_model, small_data, tmp_path):
    db = tmp_path / "s.duckdb"
    cancel = threading.Event()

    def progress(probe, fraction, message):
        if probe == "identity":
            cancel.set()

    cfg = AuditConfig(model=tiny_model, data=str(small_data), conditions=["clean", "mask:n95"], bootstrap=30,
                      mlp_epochs=10)
    with pytest.raises(api.Cancelled, match="finished probes are kept"):
        api.run_audit(cfg, db, progress, cancel)
    with Store(db) as s:
        run_id = s.resolve_run("latest")
        assert s.run(run_id)["status"] == "cancelled"
        assert set(s.probes(run_id)["probe"]) == {"leakage"}
        n_leak = int((s.metrics(run_id)["probe"] == "leakage").sum())
    assert api.run_audit(cfg, db, resume=run_id) == run_id
    with Store(db) as s:
        assert s.run(run_id)["status"] == "completed"
        m = s.metrics(run_id)
        assert int((m["probe"] == "leakage").sum()) == n_leak and (m["probe"] == "identity").any()


@pytest.mark.slow
def test_same_inputs_same_numbers(tiny_model, small_data, tmp_path):
    cfg = AuditConfig(model=tiny_model, data=str(small_data), conditions=["clean", "patch:0.3"], bootstrap=30,
                      mlp_epochs=10)
    runs = [api.run_audit(cfg, tmp_path / f"{i}.duckdb") for i in range(2)]
    frames = []
    for i, run_id in enumerate(runs):
        with Store(tmp_path / f"{i}.duckdb") as s:
            frames.append(s.metrics(run_id).drop(columns=["run_id"]))
    assert frames[0].equals(frames[1])


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_gradient_attacks_that_stop_on_a_plateau_are_reproducible(small_data, tmp_path, precision):
    """Inversion and cloaks stop when their own objective levels off: the stopping point, and so every number,
    must still be the same for the same inputs and seed, in either attack precision. Two builder models (target
    and surrogate) keep it quick; what is tested is the attacks' bookkeeping, not a model's strength."""
    from tests.builders import make_onnx

    target, surrogate = make_onnx(tmp_path / "target.onnx"), make_onnx(tmp_path / "surrogate.onnx", seed=1)
    cfg = AuditConfig(model=target, data=str(small_data), probes=["inversion", "cloak"],
                      conditions=["clean"], surrogates=[surrogate], parity=False, bootstrap=30,
                      attack_precision=precision)
    frames, records = [], []
    for i in range(2):
        run_id = api.run_audit(cfg, tmp_path / f"{i}.duckdb")
        with Store(tmp_path / f"{i}.duckdb") as s:
            frames.append(s.metrics(run_id).drop(columns=["run_id"]))
            arts = s.artifacts(run_id)
        conv = json.loads(bytes(arts.set_index("name").loc["convergence.json", "data"]))
        dec = json.loads(bytes(arts.set_index("name").loc["decoder.json", "data"]))
        records.append(([{k: v for k, v in c.items() if k != "seconds"} for c in conv],
                        dec["convergence"], dec["white_box_convergence"]))
    assert frames[0].equals(frames[1])
    assert records[0] == records[1]
    assert any(c["stopped_by"] == "plateau" for c in records[0][0])  # the plateau rule did stop something
    assert {c["precision"] for c in records[0][0]} == {precision} and dec["precision"] == precision


def test_nan_model_stops_before_anything_is_written(tmp_path, small_data):
    from tests.builders import make_onnx

    model = make_onnx(tmp_path / "nan.onnx", nan=True)
    db = tmp_path / "s.duckdb"
    cfg = AuditConfig(model=model, data=str(small_data), conditions=["clean"], parity=False)
    with pytest.raises(Exception, match="contains NaN"):  # the preprocessing check runs the model first
        api.run_audit(cfg, db)
    assert not db.exists()
    # named by its photos (it said 'images 0..0', a position inside a batch)
    with pytest.raises(Exception, match=r"contains NaN or infinite values \(for \S+\.jpg and images after it up to "
                                        r"\S+\.jpg \(preprocessing check, color RGB"):
        api.run_audit(cfg, db)



def test_failed_probe_marks_run_failed(tmp_path, small_data, monkeypatch):
    from audit.probes.identity import IdentityProbe
    from tests.builders import make_onnx

    def broken(self, ctx):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(IdentityProbe, "run", broken)
    db = tmp_path / "s.duckdb"
    cfg = AuditConfig(model=make_onnx(tmp_path / "m.onnx"), data=str(small_data), probes=["identity"],
                      conditions=["clean"], parity=False)
    with pytest.raises(RuntimeError, match="disk on fire"):
        api.run_audit(cfg, db)
    with Store(db) as s:
        run = s.run(s.resolve_run("latest"))
        assert run["status"] == "failed" and "disk on fire" in run["error"]
        assert s.metrics(run["run_id"]).empty

@pytest.mark.parametrize("probes", [["identity"], ["leakage"]])
def test_unknown_attributes_are_refused_naming_the_available_ones(tiny_model, small_data, probes):
    """Issue 33 item 12: '--attributes shoe_size' was accepted and ignored when no probe read it."""
    cfg = AuditConfig(model=tiny_model, data=str(small_data), probes=probes, attributes=["sex", "shoe_size"])
    with pytest.raises(api.ConfigError, match=r"--attributes: 'shoe_size' not among the attributes of .*"
                                              r"\(available: .*sex"):
        api.check_config(cfg)
