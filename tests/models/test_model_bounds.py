"""Issue 11, class 4: model inputs and outputs are checked at inspect, before any work is spent."""

import onnx
import pytest
from onnx import TensorProto, helper

from audit import api
from audit.errors import ProfileError
from tests.builders import make_onnx


def test_input_larger_than_the_limit_is_refused(tmp_path, monkeypatch):
    model = make_onnx(tmp_path / "big.onnx", size=256)
    assert api.inspect_model(model).profile.input.size == (256, 256)
    monkeypatch.setenv("FACEAUDIT_MAX_INPUT_PIXELS", str(200 * 200))
    with pytest.raises(ProfileError, match=r"model input 256x256 \(65536 pixels\) is larger than the limit of 40000"):
        api.inspect_model(model)
    monkeypatch.setenv("FACEAUDIT_MAX_INPUT_PIXELS", "lots")
    with pytest.raises(ProfileError, match="FACEAUDIT_MAX_INPUT_PIXELS"):
        api.inspect_model(model)


def _model(path, out_shape, in_shape=("N", 3, 112, 112)):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, list(in_shape))
    y = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, list(out_shape))
    node = helper.make_node("Identity", ["input"], ["embedding"])
    m = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save_model(m, str(path))
    return path


def test_embedding_output_must_be_batch_by_d(tmp_path):
    model = _model(tmp_path / "img.onnx", ["N", 3, 112, 112])
    (tmp_path / "img.profile.yaml").write_text(
        "name: img\nkind: embedding\nembedding_output: embedding\ninput: {name: input, size: [112, 112]}\n")
    with pytest.raises(ProfileError, match=r"output shape \['N', 3, 112, 112\] is not \(batch, D\)"):
        api.inspect_model(model)


def test_graph_no_profile_can_describe_is_one_line(tmp_path):
    model = _model(tmp_path / "tiny.onnx", ["N", 16], in_shape=("N", 3, 4, 4))
    with pytest.raises(ProfileError, match="cannot infer a profile") as err:
        api.inspect_model(model)
    assert "\n" not in str(err.value)


def test_non_finite_normalisation_is_refused(tmp_path):
    model = make_onnx(tmp_path / "m.onnx")
    (tmp_path / "m.profile.yaml").write_text(
        "name: m\nkind: embedding\nembedding_output: embedding\n"
        "input: {name: input, size: [112, 112], mean: [.nan, 0, 0]}\n")
    with pytest.raises(ProfileError, match="finite"):
        api.inspect_model(model)
