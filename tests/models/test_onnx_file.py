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


def test_a_models_identity_covers_its_external_weights(tmp_path, small_data):
    """A review of the input handling: the id hashed the .onnx file only, so other weights in the external-data file
    beside the same graph kept the model's id, and a run into the same store reused the old weights' cached
    embeddings (and resume, protocol pins and signed subjects took them for the old ones)."""
    import shutil

    from audit import api
    from audit.config import AuditConfig
    from audit.store import Store

    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    a, b = (make_onnx(tmp_path / d / "m.onnx", external=True, seed=k) for k, d in enumerate("ab"))
    assert a.read_bytes() == b.read_bytes()  # the graph file alike: only the weights differ
    first = load_model_file(a).sha256
    assert first != load_model_file(b).sha256
    plain = make_onnx(tmp_path / "plain.onnx")
    assert load_model_file(plain).sha256 == hashlib.sha256(plain.read_bytes()).hexdigest()  # as sha256sum gives it

    def eer(db):
        cfg = AuditConfig(model=a, data=str(small_data), probes=["identity"], conditions=["clean"], parity=False,
                          accept_profile=True, bootstrap=20)
        run_id = api.run_audit(cfg, db)
        with Store(db, read_only=True) as s:
            return s.run(run_id)["model_id"], s.metrics(run_id).query("metric == 'eer'")["value"].iloc[0], s.run(run_id)

    *before, run = eer(tmp_path / "s.duckdb")
    # a signed statement names each file with its own checksum (the id, made of them, is no file's checksum)
    from audit.evidence.attest import _model_subjects

    subjects = {x["name"]: x["digest"]["sha256"] for x in _model_subjects(run)}
    assert subjects == {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in (a, a.with_name("m.onnx.data"))}
    shutil.copyfile(b.with_name("m.onnx.data"), a.with_name("m.onnx.data"))  # other weights, the same .onnx file
    after, fresh = eer(tmp_path / "s.duckdb")[:2], eer(tmp_path / "fresh.duckdb")[:2]
    assert before[0] == first and after[0] != first and after == fresh and after[1] != before[1]
