"""A user-supplied RetinaFace-format detector ONNX: a tiny graph with planted outputs, decoded end to end."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from audit.errors import ModelError, ProfileError
from audit.intake import load
from audit.intake.detectors import OnnxDetector, RetinaAnchors, priors
from tests.detect.photos import write_rgb

SIZE = 64
N_PRIORS = (8 * 8 + 4 * 4 + 2 * 2) * 2  # default steps 8/16/32, two min sizes each, on a 64x64 input
FACE = 57        # stride 8, row 3, column 4, min size 32: prior centre (36, 28) px, 32 x 32
WEAK = 10        # a second, weak face
LOC = [0.5, -0.5, np.log(2.0) / 0.2, 0.0]  # centre moves (+0.8, -0.8) px; width doubles (64 px), height 32 px
LMS = [-3, -2, 3, -2, 0, 0, -2, 3, 2, 3]    # eyes, nose, mouth corners around the centre (units of 0.1 x 32 px)

PROFILE = """\
name: planted-retinaface
kind: detector
format: retinaface
input: {name: input0, size: [64, 64], color: BGR, mean: [104, 117, 123], std: [1, 1, 1]}
outputs: {boxes: loc, scores: conf, landmarks: landms}
"""


def planted_model(path, n=N_PRIORS):
    loc = np.zeros((1, n, 4), np.float32)
    conf = np.tile(np.array([0.99, 0.01], np.float32), (1, n, 1))
    lms = np.zeros((1, n, 10), np.float32)
    loc[0, FACE], conf[0, FACE], lms[0, FACE] = LOC, (0.02, 0.98), LMS
    conf[0, WEAK] = (0.3, 0.7)
    lms[0, WEAK] = LMS
    nodes, inits = [helper.make_node("ReduceMean", ["input0"], ["m"], keepdims=0),
                    helper.make_node("Mul", ["m", "zero"], ["z"])], [numpy_helper.from_array(np.float32(0), "zero")]
    for name, arr in (("loc", loc), ("conf", conf), ("landms", lms)):
        inits.append(numpy_helper.from_array(arr, name + "_c"))
        nodes.append(helper.make_node("Add", [name + "_c", "z"], [name]))
    graph = helper.make_graph(
        nodes, "planted", [helper.make_tensor_value_info("input0", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(a.shape)) for k, a in
         (("loc", loc), ("conf", conf), ("landms", lms))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    path.with_name(path.stem + ".profile.yaml").write_text(PROFILE)
    return path


def expected(scale: float):
    """The planted face computed by hand (input pixels / scale)."""
    cx, cy, s = (4 + 0.5) * 8, (3 + 0.5) * 8, 32.0
    cx, cy = cx + LOC[0] * 0.1 * s, cy + LOC[1] * 0.1 * s
    w, h = s * np.exp(LOC[2] * 0.2), s * np.exp(LOC[3] * 0.2)
    box = np.array([cx - w / 2, cy - h / 2, w, h]) / scale
    pts = (np.array([36.0, 28.0]) + np.array(LMS, float).reshape(5, 2) * 0.1 * s) / scale
    return box, pts


def test_priors_follow_the_retinaface_order():
    p = priors(RetinaAnchors(), (SIZE, SIZE))
    assert p.shape == (N_PRIORS, 4)
    assert np.allclose(p[FACE] * SIZE, [36, 28, 32, 32])
    assert np.allclose(p[0] * SIZE, [4, 4, 16, 16]) and np.allclose(p[128] * SIZE, [8, 8, 64, 64])


def test_planted_face_is_decoded(tmp_path):
    det = OnnxDetector(planted_model(tmp_path / "det.onnx"))
    img = np.zeros((96, 128, 3), np.uint8)  # letterboxed into 64x64 at scale 0.5
    faces = det.detect(img)
    assert [round(f.confidence, 2) for f in faces] == [0.98, 0.7]
    box, pts = expected(0.5)
    assert np.allclose(faces[0].box, box, atol=1e-3)
    assert np.allclose(np.array(faces[0].points), pts, atol=1e-3)
    assert det.key.startswith("onnx-retinaface:") and det.describe()["name"] == "planted-retinaface"


def test_planted_detector_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    model = planted_model(tmp_path / "det.onnx")
    data = tmp_path / "data"
    for i in range(2):
        write_rgb(data / f"{i}.png", np.full((128, 128, 3), 60 * i, np.uint8))
    pd.DataFrame({"image": ["0.png", "1.png"], "subject": ["a", "b"]}).to_csv(data / "manifest.csv", index=False)
    ds = load(data, detector=str(model))
    faces = ds.faces()
    assert faces.rows.tolist() == [0, 1] and not faces.issues  # the weak face is below 0.9: not a second face
    _, pts = expected(0.5)
    assert np.allclose(ds.acquisition().landmarks[0], pts, atol=1e-3)
    # At a threshold below the weak face's score, both count: the larger is used and the choice recorded.
    faces = load(data, detector=str(model), min_confidence=0.5).faces()
    assert {i.problem for i in faces.issues} == {"multiple_faces"}


def test_garbage_detector_is_one_line(tmp_path):
    bad = tmp_path / "det.onnx"
    bad.write_bytes(b"\x00not an onnx file at all")
    with pytest.raises(ModelError) as exc:
        OnnxDetector(bad)
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)


def test_missing_or_bad_profile_names_the_file_and_field(tmp_path):
    model = planted_model(tmp_path / "det.onnx")
    prof = tmp_path / "det.profile.yaml"
    prof.unlink()
    with pytest.raises(ProfileError, match="needs its profile det.profile.yaml"):
        OnnxDetector(model)
    for text, message in (
            (PROFILE.replace("format: retinaface", "format: scrfd"), r"det.profile.yaml: field 'format'"),
            (PROFILE + "anchors: {steps: [8, 16], min_sizes: [[16]]}\n", r"field 'anchors'.*steps has 2 entries"),
            (PROFILE.replace("landmarks: landms", "landmarks: lm"),
             r"field 'outputs.landmarks' = 'lm' contradicts the graph"),
            (PROFILE + "nms_threshold: 2\n", r"field 'nms_threshold'"),
            (PROFILE + "format: retinaface\n", r"duplicate key 'format'")):
        prof.write_text(text)
        with pytest.raises(ProfileError, match=message):
            OnnxDetector(model)


def test_outputs_that_do_not_fit_the_priors_are_one_line(tmp_path):
    model = planted_model(tmp_path / "det.onnx", n=100)
    with pytest.raises(ModelError, match="one row per prior box"):
        OnnxDetector(model).detect(np.zeros((64, 64, 3), np.uint8))


def test_cold_and_warm_cache_give_the_same_landmarks_exactly(tmp_path, monkeypatch):
    """An odd letterbox scale gives landmarks with many digits; the cache must not round them."""
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    model = planted_model(tmp_path / "det.onnx")
    data = tmp_path / "data"
    write_rgb(data / "0.png", np.full((97, 131, 3), 60, np.uint8))
    pd.DataFrame({"image": ["0.png"], "subject": ["a"]}).to_csv(data / "manifest.csv", index=False)
    cold = load(data, detector=str(model)).acquisition()
    warm = load(data, detector=str(model)).acquisition()
    assert cold.detected == 1 and warm.cache_hits == 1 and warm.detected == 0
    assert np.isfinite(cold.landmarks).all()
    assert np.array_equal(cold.landmarks, warm.landmarks) and np.array_equal(cold.confidence, warm.confidence)
    assert cold.landmarks[0, 0, 0] != round(cold.landmarks[0, 0, 0], 3)  # not a value rounding would keep


def test_letterbox_scales_each_axis_by_its_own_factor(tmp_path):
    det = OnnxDetector(planted_model(tmp_path / "det.onnx"))
    faces = det.detect(np.zeros((97, 131, 3), np.uint8))  # resized to 64 x 47: fx = 64/131, fy = 47/97
    fx, fy = 64 / 131, 47 / 97
    _, pts = expected(1.0)  # input pixels
    assert np.allclose(np.array(faces[0].points), pts / (fx, fy), atol=1e-9)


def test_partial_input_mapping_takes_the_retinaface_defaults_per_field(tmp_path):
    from audit.intake.detectors import DetectorProfile

    prof = DetectorProfile.model_validate({"name": "x", "kind": "detector", "format": "retinaface",
                                           "input": {"name": "input0"}})
    assert prof.input.name == "input0" and prof.input.color == "BGR" and tuple(prof.input.size) == (640, 640)
    assert prof.input.mean == (104.0, 117.0, 123.0) and prof.input.std == (1.0, 1.0, 1.0)
    # Through a profile file: only name and size given, the rest stays RetinaFace's.
    model = planted_model(tmp_path / "det.onnx")
    model.with_name("det.profile.yaml").write_text(
        "name: p\nkind: detector\nformat: retinaface\ninput: {name: input0, size: [64, 64]}\n"
        "outputs: {boxes: loc, scores: conf, landmarks: landms}\n")
    spec = OnnxDetector(model).profile.input
    assert (spec.color, spec.mean, spec.std) == ("BGR", (104.0, 117.0, 123.0), (1.0, 1.0, 1.0))
    assert DetectorProfile.model_validate({"name": "x", "kind": "detector", "format": "retinaface"}).input == \
        prof.input.model_copy(update={"name": "input"})


def test_input_size_must_be_the_graphs_and_bounded(tmp_path):
    """Issue 33 item 6: a profile size of 100000x100000 on a fixed graph is refused (it made prepare grow to
    21 GB); on a graph with a free size the profile's size is bounded by FACEAUDIT_MAX_INPUT_PIXELS."""
    model = planted_model(tmp_path / "det.onnx")
    prof = tmp_path / "det.profile.yaml"
    prof.write_text(PROFILE.replace("[64, 64]", "[100000, 100000]"))
    with pytest.raises(ProfileError, match=r"field 'input.size' = \[100000, 100000\] contradicts the graph: its "
                                           r"input 'input0' is 64x64"):
        OnnxDetector(model)
    graph = onnx.load(model)
    for dim, name in zip(graph.graph.input[0].type.tensor_type.shape.dim[2:], ("h", "w")):
        dim.ClearField("dim_value")
        dim.dim_param = name
    onnx.save(graph, model)
    with pytest.raises(ProfileError, match=r"field 'input.size' = \[100000, 100000\]: larger than the limit"):
        OnnxDetector(model)
    prof.write_text(PROFILE)
    assert OnnxDetector(model).profile.input.size == (64, 64)
