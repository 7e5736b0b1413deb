"""The run lifecycle through audit.api: cancel keeps finished probes, resume completes the run."""

import json
import threading

import numpy as np
import pytest

from audit import api
from audit.config import AuditConfig
from audit.errors import ConfigError
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


def test_a_run_the_identity_matrix_would_not_fit_is_refused_before_anything_is_written(tmp_path, small_data,
                                                                                      sample_model, monkeypatch):
    """The identity probe's score matrices are quadratic in the images (every probe image against every gallery
    image; about 56 bytes a comparison): a thorough run on 100k images needed ~100 GB and was killed for memory
    after its embedding pass. Such a run is now refused up front, naming the comparisons, the memory and how many
    images would fit; a run that fits, and a run without the identity probe, are not concerned."""
    from audit.probes import get
    from audit.probes.identity import BYTES_PER_COMPARISON, IdentityProbe
    from audit.run.pipeline import check_memory

    subjects = np.repeat(np.arange(1000), 3).astype(str)  # 2,000 probe images x 1,000 gallery images
    size, what = IdentityProbe().memory(subjects)
    assert size == BYTES_PER_COMPARISON * 2000 * 1000 and what.startswith("2,000 probe images x 1,000 gallery")
    cfg = AuditConfig(model="m.onnx", preset="thorough")
    check_memory([IdentityProbe()], subjects, cfg, available=size)  # fits exactly
    with pytest.raises(ConfigError, match=r"^identity: 2,000 probe images x 1,000 gallery images = 2,000,000 "
                                          r"comparisons need about 0\.1 GiB of memory and this machine has 0\.0 GiB "
                                          r"available; audit fewer images \(about 1,500 fit: a smaller --preset than "
                                          r"'thorough', or max_images: 1500 in a protocol's overrides\)"):
        check_memory([IdentityProbe()], subjects, cfg, available=size // 4)
    check_memory([get("leakage")], subjects, cfg, available=1)  # says nothing of its memory: not refused
    # Through a run: refused before the store exists; leakage alone is not concerned
    monkeypatch.setattr("audit.devices.available_memory", lambda: 1000)
    db = tmp_path / "s.duckdb"
    with pytest.raises(ConfigError, match="identity: .* comparisons need about"):
        api.run_audit(AuditConfig(model=sample_model("fr-baseline"), data=str(small_data), probes=["identity"],
                                  conditions=["clean"], parity=False), db)
    assert not db.exists()
