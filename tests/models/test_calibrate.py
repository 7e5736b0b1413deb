"""The preprocessing check: a sample model given a wrong profile is caught; the right profile passes."""

import pytest
import yaml

from audit import api
from audit.config import AuditConfig
from audit.data import load
from audit.errors import ConfigError
from audit.models import load as load_model
from audit.models.calibrate import candidates, run_check
from audit.store import Store
from tests.builders import make_onnx

pytestmark = pytest.mark.slow

WRONG = {"swapped colour order": {"color": "BGR"}, "wrong scale": {"std": (1.0, 1.0, 1.0)},
         "0-1 instead of +-1": {"mean": (0.0, 0.0, 0.0), "std": (255.0, 255.0, 255.0)}}


def with_input(model, **update):
    prof = model.profile
    model.profile = prof.model_copy(update={"input": prof.input.model_copy(update=update)})
    return model


@pytest.fixture(scope="module")
def data(probe_data):
    ds = load(probe_data)
    return ds, ds.faces()


@pytest.mark.parametrize("name", ["fr-baseline", "attr-classifier"])
def test_right_profile_passes(name, data, sample_model):
    ds, faces = data
    check = run_check(load_model(sample_model(name)), ds, faces, 0)
    assert check.better is None and not check.note
    assert check.scores[0]["in_use"]  # the shipped profile ranks first


@pytest.mark.parametrize("name", ["fr-baseline", "attr-classifier"])
@pytest.mark.parametrize("wrong", list(WRONG))
def test_wrong_profile_is_caught(name, wrong, data, sample_model):
    ds, faces = data
    check = run_check(with_input(load_model(sample_model(name)), **WRONG[wrong]), ds, faces, 0)
    assert check.better is not None, wrong
    assert check.better["label"] == "RGB pm1" and check.better["ci_low"] > 0
    assert "--accept-profile" in check.message(name)


def test_candidates_cover_the_usual_settings_once(sample_model):
    cands = candidates(load_model(sample_model("fr-baseline")).profile)
    assert cands[0].in_use and len(cands) == 10  # RGB/BGR x 5 normalisations, the one in use not repeated
    assert {c.label.split()[1] for c in cands[1:]} == {"imagenet", "unit", "caffe", "raw", "pm1"}


def test_run_stops_before_writing_unless_accepted(tmp_path, probe_data, sample_model):
    model = tmp_path / "vendor.onnx"
    model.write_bytes(sample_model("fr-baseline").read_bytes())
    prof = yaml.safe_load((sample_model("fr-baseline").parent / "fr-baseline.profile.yaml").read_text())
    prof["input"]["color"] = "BGR"
    (tmp_path / "vendor.profile.yaml").write_text(yaml.safe_dump(prof))
    db = tmp_path / "s.duckdb"
    cfg = AuditConfig(model=model, data=str(probe_data), probes=["identity"], conditions=["clean"], bootstrap=30,
                      parity=False)
    with pytest.raises(ConfigError, match=r"looks wrong: .*color RGB.*--accept-profile"):
        api.run_audit(cfg, db)
    assert not db.exists()  # nothing half-written
    run_id = api.run_audit(cfg.model_copy(update={"accept_profile": True}), db)
    with Store(db) as s:
        art = s.artifacts(run_id, "models")
    assert (art["name"] == "preprocessing.json").any()
    html = api.build_report(run_id, db, tmp_path / "out", ["html"])[0].read_text()
    assert "The profile in use looks wrong" in html and "understated" in html


def test_random_model_is_not_stopped(tmp_path, small_data):
    """A model that works under no candidate cannot be judged: the run goes on and the report says why."""
    db = tmp_path / "s.duckdb"
    cfg = AuditConfig(model=make_onnx(tmp_path / "m.onnx"), data=str(small_data), probes=["identity"],
                      conditions=["clean"], bootstrap=30, parity=False)
    run_id = api.run_audit(cfg, db)
    html = api.build_report(run_id, db, tmp_path / "out", ["html"])[0].read_text()
    assert "cannot tell a wrong profile from a weak model" in html


def test_inspect_calibrate_writes_the_best_setting(tmp_path, probe_data, sample_model):
    model = tmp_path / "vendor.onnx"
    model.write_bytes(sample_model("fr-baseline").read_bytes())  # no profile: everything inferred
    res = api.inspect_model(model, write_profile=True, data=str(probe_data), calibrate=True)
    written = yaml.safe_load(res.written.read_text())
    best = res.check.scores[0]
    assert written["input"]["color"] == best["color"] == "RGB"
    assert list(written["input"]["std"]) == best["std"]
    assert not {"input.color", "input.mean", "input.std"} & set(written.get("guessed", []))
    with pytest.raises(ConfigError, match="--calibrate needs --data"):
        api.inspect_model(model, calibrate=True)


def _centre_cropped(src, dst):
    """``src`` (an NCHW model with a 112x112 input) behind a centre crop to 112x112, its input's height and width left
    open: it runs at any size of at least 112 and sees a face aligned at 128 zoomed in (as a model trained at 112 and
    fed 128 does), and fails on smaller ones (the crop is then too small for its flattened layer)."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(str(src))
    inp = m.graph.input[0]
    name = inp.name
    inner = "cropped_input"
    for node in m.graph.node:
        node.input[:] = [inner if i == name else i for i in node.input]
    const = lambda n, v: helper.make_node("Constant", [], [n], value=helper.make_tensor(  # noqa: E731
        n, TensorProto.INT64, [len(v)], v))
    nodes = [helper.make_node("Shape", [name], ["shape"]), const("hw_idx", [2, 3]),
             helper.make_node("Gather", ["shape", "hw_idx"], ["hw"], axis=0), const("side", [112, 112]),
             const("two", [2, 2]), helper.make_node("Sub", ["hw", "side"], ["spare"]),
             helper.make_node("Div", ["spare", "two"], ["starts"]), helper.make_node("Add", ["starts", "side"], ["ends"]),
             helper.make_node("Slice", [name, "starts", "ends", "hw_idx"], [inner])]
    rest = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(nodes + rest)
    for i, p in ((2, "H"), (3, "W")):
        d = inp.type.tensor_type.shape.dim[i]
        d.ClearField("dim_value")
        d.dim_param = p
    onnx.save(m, str(dst))
    return dst


def test_a_wrong_size_is_caught_when_the_graph_leaves_it_open(tmp_path, probe_data, sample_model):
    """A model whose graph takes any size, given a profile of 160x160 where it was trained at 112, ran weaker and the
    check (colour and normalisation only) passed it: the usual sizes are now tried too, and 112x112 is clearly
    better; a size the graph cannot run (96) is no candidate, and the right size passes."""
    src = sample_model("fr-baseline")
    model = _centre_cropped(src, tmp_path / "cropped.onnx")
    prof = yaml.safe_load((src.parent / "fr-baseline.profile.yaml").read_text())
    (tmp_path / "cropped.profile.yaml").write_text(yaml.safe_dump(prof))
    right = load_model(model)
    ds = load(probe_data)
    check = run_check(right, ds, ds.faces(), 0)
    assert check.better is None and check.scores[0]["in_use"]
    assert {s["label"] for s in check.scores} >= {"size 128x128", "size 160x160"}
    assert "size 112x96" not in {s["label"] for s in check.scores}  # too small for the crop: skipped, not a crash
    prof["input"]["size"] = [160, 160]
    (tmp_path / "cropped.profile.yaml").write_text(yaml.safe_dump(prof))
    wrong = load_model(model)
    check = run_check(wrong, ds, ds.faces((160, 160)), 0)
    assert check.better is not None and check.better["size"] == [112, 112], check.scores[:3]
    assert "size 112x112" in check.message("cropped") and check.better["ci_low"] > 0
    fixed = load_model(src)
    assert not any(c.size for c in candidates(fixed.profile, False))  # a fixed graph checks its size itself
