import pytest
import yaml

from audit.errors import ProfileError
from audit.models import infer_profile, load_model_file, resolve_profile
from audit.models.profile import load_profile, profile_path, save_profile
from tests.builders import make_onnx


def test_inferred_profile_marks_guesses(tiny_model):
    prof = infer_profile(load_model_file(tiny_model))
    assert prof.kind == "embedding" and prof.embedding_output == "embedding"
    assert prof.input.size == (112, 112) and prof.input.layout == "NCHW"
    assert {"input.color", "input.mean", "kind"} <= set(prof.guessed)


def test_nhwc_layout_is_detected(tmp_path):
    prof = infer_profile(load_model_file(make_onnx(tmp_path / "m.onnx", layout="NHWC", size=96)))
    assert prof.input.layout == "NHWC" and prof.input.size == (96, 96)


def test_sidecar_profile_round_trips(tiny_model):
    info = load_model_file(tiny_model)
    save_profile(infer_profile(info), profile_path(tiny_model))
    prof, from_file = resolve_profile(info)
    assert from_file and prof.embedding_output == "embedding"


@pytest.mark.parametrize("field,value,match", [
    ("size", [128, 128], "field 'input.size'"),
    ("layout", "NHWC", "field 'input.layout'"),
    ("name", "pixels", "field 'input.name'"),
])
def test_profile_contradicting_graph_names_field(tiny_model, field, value, match):
    info = load_model_file(tiny_model)
    path = profile_path(tiny_model)
    save_profile(infer_profile(info), path)
    data = yaml.safe_load(path.read_text())
    data["input"][field] = value
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=match):
        resolve_profile(info)


def test_wrong_output_name_is_an_error(tiny_model):
    info = load_model_file(tiny_model)
    path = profile_path(tiny_model)
    save_profile(infer_profile(info), path)
    data = yaml.safe_load(path.read_text())
    data["embedding_output"] = "features"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match="'embedding_output' = 'features' contradicts the graph"):
        resolve_profile(info)


def test_invalid_profile_value_names_file_and_field(tmp_path):
    p = tmp_path / "x.profile.yaml"
    p.write_text("name: x\nkind: embedding\nembedding_output: e\ninput: {name: input, layout: CHW}\n")
    with pytest.raises(ProfileError, match=r"x.profile.yaml: field 'input.layout'"):
        load_profile(p)


def test_a_guessed_entry_that_is_no_profile_field_is_refused(tiny_model):
    info = load_model_file(tiny_model)
    path = profile_path(tiny_model)
    save_profile(infer_profile(info), path)
    data = yaml.safe_load(path.read_text())
    data["guessed"] = ["input.color", "input.bogus"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=r"field 'guessed.*'input.bogus' is no profile field"):
        resolve_profile(info)
    path.unlink()


@pytest.mark.parametrize("change,message", [
    ("uint8", "the input takes uint8 values; faceaudit feeds float32 pixels"),
    ("second input", "the graph needs further inputs ['aux'], which faceaudit cannot feed")])
def test_a_graph_faceaudit_cannot_feed_is_refused_at_inspect(tmp_path, change, message):
    """A review of the input handling: a model taking uint8 pixels, or needing a second input, passed inspect and
    failed in the run's first inference."""
    import onnx
    from onnx import TensorProto, helper

    path = make_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    g = model.graph
    if change == "uint8":
        g.input[0].type.tensor_type.elem_type = TensorProto.UINT8
        g.node.insert(0, helper.make_node("Cast", ["input"], ["input_f"], to=TensorProto.FLOAT))
        for n in g.node[1:]:
            n.input[:] = ["input_f" if i == "input" else i for i in n.input]
    else:
        out = g.output[0].name  # the embedding: now its node's output plus the further input
        g.input.append(helper.make_tensor_value_info("aux", TensorProto.FLOAT, [1]))
        next(n for n in g.node if out in n.output).output[:] = ["raw"]
        g.node.append(helper.make_node("Add", ["raw", "aux"], [out]))
    onnx.save(model, str(path))
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        resolve_profile(load_model_file(path))
    assert "\n" not in str(err.value)
