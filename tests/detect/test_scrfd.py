"""A user-supplied SCRFD detector ONNX: a tiny graph with planted outputs, decoded end to end.

The expected boxes and points below are worked out by hand from SCRFD's conventions (anchor centre
``(col * stride, row * stride)``, distances in units of the stride), not by the decoder's code.
"""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from audit.errors import ModelError, ProfileError
from audit.intake import load
from audit.intake.detectors import OnnxDetector
from audit.intake.resolve import resolve_detector
from audit.intake.scrfd import ScrfdDetector, ScrfdProfile, anchor_centres
from tests.detect.photos import write_rgb

SIZE = 64
ANCHORS = {8: 8 * 8 * 2, 16: 4 * 4 * 2, 32: 2 * 2 * 2}  # strides 8/16/32 on 64x64, two anchors per location
FACE = 13  # stride 16: location 6 (row 1, column 2), second anchor -> centre (32, 16)
DIST = [1.0, 0.5, 1.5, 2.0]  # left, top, right, bottom in strides: 16, 8, 24, 32 px
KPS = [-0.5, 0.25, 0.75, 0.25, 0.125, 0.75, -0.25, 1.25, 0.5, 1.25]  # offsets of the five points, in strides
BOX = (16.0, 8.0, 40.0, 40.0)  # x, y, w, h in input pixels: (32 - 16, 16 - 8), (32 + 24) - 16, (16 + 32) - 8
POINTS = [(24.0, 20.0), (44.0, 20.0), (34.0, 28.0), (28.0, 36.0), (40.0, 36.0)]  # (32 + 16 dx, 16 + 16 dy)
WEAK = 21  # stride 8: a candidate scoring 0.3, under the default min_score 0.5

PROFILE = """\
name: planted-scrfd
kind: detector
format: scrfd
input: {name: input.1, size: [64, 64]}
"""


def planted_model(path, face_score=0.95, batched=False, with_kps=True, input_shape=(1, 3, SIZE, SIZE)):
    """Nine constant outputs (score_8..., bbox_8..., kps_8...) that depend on the input only through x * 0."""
    outs = {}
    for stride, n in ANCHORS.items():
        outs[f"score_{stride}"] = np.full((n, 1), 0.01, np.float32)
    for stride, n in ANCHORS.items():
        outs[f"bbox_{stride}"] = np.full((n, 4), 0.5, np.float32)
    if with_kps:
        for stride, n in ANCHORS.items():
            outs[f"kps_{stride}"] = np.zeros((n, 10), np.float32)
    outs["score_16"][FACE] = face_score
    outs["bbox_16"][FACE] = DIST
    if with_kps:
        outs["kps_16"][FACE] = KPS
    outs["score_8"][WEAK] = 0.3
    if batched:
        outs = {k: v[None] for k, v in outs.items()}
    nodes = [helper.make_node("ReduceMean", ["input.1"], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "zero"], ["z"])]
    inits = [numpy_helper.from_array(np.float32(0), "zero")]
    for name, arr in outs.items():
        inits.append(numpy_helper.from_array(arr, name + "_c"))
        nodes.append(helper.make_node("Add", [name + "_c", "z"], [name]))
    graph = helper.make_graph(
        nodes, "planted", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(a.shape)) for k, a in outs.items()], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    path.with_name(path.stem + ".profile.yaml").write_text(PROFILE)
    return path


def test_anchor_centres_have_no_half_cell_offset():
    c = anchor_centres((SIZE, SIZE), 16, 2)
    assert c.shape == (ANCHORS[16], 2)
    assert c[:4].tolist() == [[0, 0], [0, 0], [16, 0], [16, 0]]  # each location twice, then the next column
    assert c[FACE].tolist() == [32, 16] and c[8].tolist() == [0, 16]  # row 1 starts after 4 locations


@pytest.mark.parametrize("batched", [False, True])
def test_planted_face_is_decoded(tmp_path, batched):
    det = resolve_detector(str(planted_model(tmp_path / "det.onnx", batched=batched)))
    assert isinstance(det, ScrfdDetector)
    faces = det.detect(np.zeros((SIZE, SIZE, 3), np.uint8))  # no letterbox: input pixels are source pixels
    assert len(faces) == 1  # the 0.3 candidate is under min_score
    assert faces[0].confidence == pytest.approx(0.95)
    assert np.allclose(faces[0].box, BOX, atol=1e-6)
    assert np.allclose(np.array(faces[0].points), POINTS, atol=1e-6)
    assert det.key.startswith("onnx-scrfd:") and det.describe()["format"] == "scrfd"


def test_letterbox_scale_back_onto_a_non_square_photo(tmp_path):
    det = resolve_detector(str(planted_model(tmp_path / "det.onnx")))
    # 96 x 128 (h x w) fits 64x64 at scale 0.5 (64 x 48, padded below): source = input / 0.5.
    faces = det.detect(np.zeros((96, 128, 3), np.uint8))
    assert np.allclose(faces[0].box, (32.0, 16.0, 80.0, 80.0), atol=1e-6)
    assert np.allclose(np.array(faces[0].points), [(48, 40), (88, 40), (68, 56), (56, 72), (80, 72)], atol=1e-6)
    # 97 x 131 is resized to 64 x 47: x scales by 131/64, y by 97/47.
    faces = det.detect(np.zeros((97, 131, 3), np.uint8))
    assert np.allclose(np.array(faces[0].points)[0], (24 * 131 / 64, 20 * 97 / 47), atol=1e-9)
    assert np.allclose(faces[0].box, (16 * 131 / 64, 8 * 97 / 47, 40 * 131 / 64, 40 * 97 / 47), atol=1e-9)


def test_input_is_rgb_minus_127_5_over_128_by_default(tmp_path):
    det = resolve_detector(str(planted_model(tmp_path / "det.onnx")))
    seen = {}
    run = det.session.run

    def spy(names, feed):
        seen.update(feed)
        return run(names, feed)

    det.session = type("S", (), {"run": staticmethod(spy)})()
    red = np.zeros((SIZE, SIZE, 3), np.uint8)
    red[..., 0] = 255
    det.detect(red)
    x = seen["input.1"]
    assert x.shape == (1, 3, SIZE, SIZE) and x.dtype == np.float32
    assert np.allclose(x[0, :, 0, 0], [(255 - 127.5) / 128, -127.5 / 128, -127.5 / 128])


def test_partial_input_mapping_takes_the_scrfd_defaults_per_field():
    prof = ScrfdProfile.model_validate({"name": "x", "kind": "detector", "format": "scrfd",
                                        "input": {"size": [320, 320]}})
    spec = prof.input
    assert spec.name == "input.1" and tuple(spec.size) == (320, 320) and spec.layout == "NCHW"
    assert (spec.color, spec.mean, spec.std) == ("RGB", (127.5, 127.5, 127.5), (128.0, 128.0, 128.0))
    full = ScrfdProfile.model_validate({"name": "x", "kind": "detector", "format": "scrfd"})
    assert tuple(full.input.size) == (640, 640) and full.strides == [8, 16, 32] and full.num_anchors == 2
    assert (full.min_score, full.nms_threshold, full.outputs) == (0.5, 0.4, None)


def test_below_threshold_face_is_no_face(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    strong = planted_model(tmp_path / "strong.onnx")
    weak = planted_model(tmp_path / "weak.onnx", face_score=0.4)
    data = tmp_path / "data"
    write_rgb(data / "0.png", np.full((128, 128, 3), 90, np.uint8))
    pd.DataFrame({"image": ["0.png"], "subject": ["a"]}).to_csv(data / "manifest.csv", index=False)
    ds = load(data, detector=str(strong))
    assert ds.faces().rows.tolist() == [0] and not ds.faces().issues
    assert np.allclose(ds.acquisition().landmarks[0], np.array(POINTS) * 2, atol=1e-6)  # 128 -> 64: scale 0.5
    acq = load(data, detector=str(weak)).acquisition()  # 0.4 is under min_score: dropped before NMS
    assert acq.failed.tolist() == [True] and np.isnan(acq.confidence[0])
    assert [i.problem for i in acq.issues] == ["no_face"]


def test_cache_key_follows_the_weights_and_the_profile(tmp_path):
    a = resolve_detector(str(planted_model(tmp_path / "a.onnx")))
    b = resolve_detector(str(planted_model(tmp_path / "b.onnx", face_score=0.9)))
    assert a.key != b.key  # other weights
    (tmp_path / "a.profile.yaml").write_text(PROFILE + "min_score: 0.6\n")
    assert resolve_detector(str(tmp_path / "a.onnx")).key != a.key  # another setting
    (tmp_path / "a.profile.yaml").write_text(PROFILE)
    assert resolve_detector(str(tmp_path / "a.onnx")).key == a.key


def one_line(exc, path) -> bool:
    return str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_graph_without_keypoints_is_one_line(tmp_path):
    model = planted_model(tmp_path / "det.onnx", with_kps=False)
    with pytest.raises(ModelError, match="has 9 outputs.*this graph has 6 .no keypoints") as exc:
        resolve_detector(str(model))
    assert one_line(exc, model)


def test_outputs_of_the_wrong_shape_are_one_line(tmp_path):
    model = planted_model(tmp_path / "det.onnx", input_shape=("N", 3, "H", "W"))  # dynamic: any size runs
    model.with_name("det.profile.yaml").write_text(PROFILE.replace("[64, 64]", "[96, 96]"))
    det = resolve_detector(str(model))
    with pytest.raises(ModelError, match=r"'score_8' has shape \[128, 1\], expected \(288, 1\)") as exc:
        det.detect(np.zeros((SIZE, SIZE, 3), np.uint8))
    assert one_line(exc, model.resolve()) or one_line(exc, model)


def test_bad_profile_names_the_file_and_field(tmp_path):
    model = planted_model(tmp_path / "det.onnx")
    prof = tmp_path / "det.profile.yaml"
    names = "[score_8, score_16, score_32, bbox_8, bbox_16, bbox_32, kps_8, kps_16, kps_32]"
    for text, message in (
            (PROFILE.replace("format: scrfd", "format: yunet"), r"det.profile.yaml: field 'format'"),
            (PROFILE + "outputs: [score_8, bbox_8]\n", r"field '\(profile\)'.*outputs lists 2 names"),
            (PROFILE + names.replace("kps_32", "kps_64").join(["outputs: ", "\n"]),
             r"field 'outputs' names 'kps_64', which contradicts the graph"),
            (PROFILE.replace("input.1", "data"), r"field 'input.name' = 'data' contradicts the graph"),
            (PROFILE.replace("[64, 64]", "[96, 96]"), r"field 'input.size' = \[96, 96\] contradicts the graph"),
            (PROFILE.replace("[64, 64]", "[72, 72]"), r"field 'input.size'.*divisible by its largest stride"),
            (PROFILE + "anchors: {steps: [8]}\n", r"field 'anchors'"),
            (PROFILE + "num_anchors: 0\n", r"field 'num_anchors'"),
            (PROFILE + "min_score: 1.5\n", r"field 'min_score'")):
        prof.write_text(text)
        with pytest.raises(ProfileError, match=message) as exc:
            resolve_detector(str(model))
        assert "det.profile.yaml" in str(exc.value) and "\n" not in str(exc.value)
    # Named outputs in another order than the graph's are read in the profile's order.
    prof.write_text(PROFILE + f"outputs: {names}\n")
    assert len(resolve_detector(str(model)).detect(np.zeros((SIZE, SIZE, 3), np.uint8))) == 1


def test_retinaface_class_refuses_an_scrfd_profile(tmp_path):
    with pytest.raises(ProfileError, match="field 'format'"):
        OnnxDetector(planted_model(tmp_path / "det.onnx"))
