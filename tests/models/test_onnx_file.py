import hashlib

import pytest

from audit.errors import ModelError
from audit.models import load_model_file
from tests.builders import make_onnx


def test_facts_are_recorded(tiny_model):
    info = load_model_file(tiny_model)
    assert info.sha256 == hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    assert info.opset == 17
    assert info.producer.startswith("faceaudit-tests")
    assert info.inputs[0].name == "input" and info.inputs[0].shape == ("N", 3, 112, 112)
    assert info.outputs[0].name == "embedding" and info.outputs[0].dtype == "FLOAT"


def test_truncated_file_is_refused(tiny_model):
    data = tiny_model.read_bytes()
    tiny_model.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="tiny.onnx: not a valid ONNX file"):
        load_model_file(tiny_model)


def test_non_onnx_file_is_refused(tmp_path):
    p = tmp_path / "notes.onnx"
    p.write_text("this is a text file, not a model\n" * 20)
    with pytest.raises(ModelError, match="notes.onnx: not a valid ONNX file"):
        load_model_file(p)


def test_empty_file_is_refused(tmp_path):
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    with pytest.raises(ModelError, match="the file is empty"):
        load_model_file(p)


def test_external_data_inside_folder_loads(tmp_path):
    path = make_onnx(tmp_path / "ext.onnx", external=True)
    assert (tmp_path / "ext.onnx.data").is_file()
    assert load_model_file(path).outputs[0].name == "embedding"


def test_external_data_outside_folder_is_refused(tmp_path):
    import onnx

    inner = tmp_path / "vendor"
    inner.mkdir()
    path = make_onnx(inner / "evil.onnx", external=True)
    model = onnx.load(str(path), load_external_data=False)
    for t in model.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../../etc/passwd"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="outside the model's folder"):
        load_model_file(path)
