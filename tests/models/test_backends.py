import re

import numpy as np
import pytest

from audit.errors import ModelError
from audit.models import load, parity_check
from tests.builders import make_onnx


def faces(n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def test_dynamic_and_fixed_batch_give_the_same_embeddings(tmp_path):
    dyn = load(make_onnx(tmp_path / "dyn.onnx", seed=3), batch_size=4)
    fixed = load(make_onnx(tmp_path / "fixed.onnx", batch=1, seed=3), batch_size=4)
    assert dyn.ort.dynamic_batch and not fixed.ort.dynamic_batch
    x = faces(7)
    np.testing.assert_allclose(dyn.ort.embed(x), fixed.ort.embed(x), rtol=1e-5, atol=1e-6)
    assert dyn.ort.embed(x).shape == (7, 16)


def test_torch_backend_matches_ort(tiny_model):
    m = load(tiny_model)
    res = parity_check(m.ort, m.torch(), faces(6))
    assert res.passed and res.max_abs_diff < 1e-4 and res.min_cosine > 0.9999


def test_parity_checks_the_differentiable_pass_the_attacks_use_on_inputs_of_another_size(tiny_model, monkeypatch):
    """The gradient attacks run the graph through ``forward_tensor`` (colour order, normalisation and layout in torch),
    not through ``run`` (numpy preprocessing): a conversion can agree in one and not the other. Both are checked, on
    the same inputs (faces of another size resized as onnxruntime's are), and the worst decides."""
    from audit.models.backends import TorchBackend

    m = load(tiny_model)
    x = faces(5)[:, :100, :90]
    res = parity_check(m.ort, m.torch(), x)
    assert res.passed and set(res.passes) == {"inference", "differentiable"}
    assert all(p["min_cosine"] > 0.9999 and p["max_abs_diff"] < 1e-4 for p in res.passes.values())
    forward = TorchBackend.forward_tensor  # the attacks' pass reads the colour channels the other way
    monkeypatch.setattr(TorchBackend, "forward_tensor", lambda self, t: forward(self, t.flip(1)))
    res = parity_check(m.ort, m.torch(), x)
    assert res.passes["inference"]["min_cosine"] > 0.9999 and res.passes["differentiable"]["min_cosine"] < 0.9999
    assert not res.passed and res.min_cosine == res.passes["differentiable"]["min_cosine"]


def test_the_differentiable_pass_resizes_as_onnxruntime_s_inputs_are_resized(tmp_path):
    """A gradient attack hands the model images of its own size (a decoder's 112 px faces, a dataset's photos); the
    differentiable pass resizes them itself and must do it as the preprocessing of onnxruntime's inputs does (OpenCV's
    area interpolation), or the attack is optimised for pixels onnxruntime never reads. A bilinear resize (what it did
    before) samples some pixels and skips the rest: on noise faces shrunk to a 56 px model's input its embeddings were
    far from onnxruntime's (a shrink by a whole factor of 2 is the one case where the two agree)."""
    import torch

    from audit.models.backends import area_matrices, resize

    m = load(make_onnx(tmp_path / "small.onnx", size=56))
    assert tuple(m.profile.input.size) == (56, 56)
    rng = np.random.default_rng(4)
    # down by a whole factor, down by a fraction, up, and one side up while the other goes down (OpenCV resizes both
    # axes another way then: matrices read off each axis alone were 58 grey levels off at (150, 100) -> 112 px)
    for shape in [(168, 168), (100, 90), (40, 48), (40, 100), (150, 30)]:
        x = rng.uniform(0, 255, (4, *shape, 3)).astype(np.float32)
        rows, cols = area_matrices(shape, (56, 56))
        np.testing.assert_allclose(np.einsum("oh,nhwc,wp->nopc", rows, x, cols), resize(x, (56, 56)), atol=1e-3)
        t = torch.from_numpy(x).permute(0, 3, 1, 2)
        want = m.ort.embed(x)
        for precision in ("float32", "bfloat16"):  # the resize itself in full precision under bfloat16 too
            with torch.no_grad():
                got = m.torch().embed_tensor(t, precision=precision).numpy()
            cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
            assert cos.min() > (0.99999 if precision == "float32" else 0.999), (shape, precision, cos)
            if precision == "float32":
                assert np.abs(got - want).max() < 1e-3, (shape, np.abs(got - want).max())


def test_parity_of_another_backend_compares_its_inference_and_takes_no_faces(tiny_model):
    """The GPU benchmark checks onnxruntime on CUDA against onnxruntime on the CPU: it has no differentiable pass to
    compare. No faces give empty outputs, as ``run`` does."""
    m = load(tiny_model)
    res = parity_check(m.ort, m.ort, faces(3))
    assert res.passed and set(res.passes) == {"inference"}
    assert m.torch().run_differentiable(faces(0))["embedding"].shape[0] == 0


def test_parity_detects_a_different_model(tmp_path):
    a = load(make_onnx(tmp_path / "a.onnx", seed=1))
    b = load(make_onnx(tmp_path / "b.onnx", seed=2))
    assert not parity_check(a.ort, b.torch(), faces(4)).passed


def test_nan_output_is_reported_with_output_name(tmp_path):
    m = load(make_onnx(tmp_path / "nan.onnx", nan=True))
    with pytest.raises(ModelError, match="nan.onnx: output 'embedding' contains NaN"):
        m.ort.embed(faces(3))


def test_unconvertible_model_keeps_ort_and_explains(tmp_path):
    # LpNormalization (an L2-normalised embedding, common in vendor models) has no onnx2torch converter.
    m = load(make_onnx(tmp_path / "l2.onnx", last_op="LpNormalization"))
    assert m.torch() is None
    assert "onnx2torch could not convert" in m.torch_error and "ort backend still works" in m.torch_error
    emb = m.ort.embed(faces(2))
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


def test_preprocessing_follows_profile_resize_and_bgr(tmp_path):
    from audit.models import preprocess
    from audit.models.profile import InputSpec, Profile

    prof = Profile(name="p", kind="embedding", embedding_output="e",
                   input=InputSpec(name="input", size=(56, 56), color="BGR", mean=(0, 0, 0), std=(1, 1, 1)))
    img = np.zeros((1, 112, 112, 3), np.uint8)
    img[..., 0] = 200  # red
    x = preprocess(img, prof)
    assert x.shape == (1, 3, 56, 56)
    assert x[0, 2].mean() == pytest.approx(200) and x[0, 0].mean() == pytest.approx(0)


def test_conv_bias_aliased_through_identity_converts_after_constant_folding(tmp_path):
    """PyTorch's exporter aliases equal constants through Identity nodes (two zero conv biases of an untrained or
    BN-folded network); onnx2torch alone cannot read such a bias, so the backend folds constants and retries."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.1, (8, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(8, np.float32), "b")]
    nodes = [helper.make_node("Identity", ["b"], ["b_alias"]),
             helper.make_node("Conv", ["input", "w", "b_alias"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["embedding"], axis=1)]
    graph = helper.make_graph(nodes, "aliased", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                ["N", 3, 112, 112])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(tmp_path / "aliased.onnx"))
    m = load(tmp_path / "aliased.onnx")
    backend = m.torch()
    assert backend is not None, m.torch_error
    assert "constant folding" in backend.conversion
    assert parity_check(m.ort, backend, faces(4)).passed


def test_bfloat16_attack_pass_follows_the_float32_one_and_hands_back_float32(sample_model):
    """The differentiable pass under bfloat16 autocast (what gradient attacks use with --attack-precision
    bfloat16) gives float32 embeddings and gradients close to float32's; inference stays float32."""
    import torch

    from audit.models.backends import resolve_precision

    path = sample_model("fr-baseline")
    full, half = load(path).torch(), load(path, precision="bfloat16").torch()
    assert (full.precision, half.precision) == ("float32", "bfloat16")
    x = torch.from_numpy(faces(8)).permute(0, 3, 1, 2).float()
    out = {}
    for name, b in (("float32", full), ("bfloat16", half)):
        xi = x.clone().requires_grad_(True)
        e = b.embed_tensor(xi)
        torch.nn.functional.normalize(e, dim=1)[:, 0].sum().backward()
        out[name] = (e.detach(), xi.grad)
    (e32, g32), (e16, g16) = out["float32"], out["bfloat16"]
    assert e16.dtype == torch.float32 and not torch.equal(e16, e32)  # it did run in bfloat16
    assert torch.nn.functional.cosine_similarity(e16, e32).min() > 0.99
    assert torch.nn.functional.cosine_similarity(g16.flatten(1), g32.flatten(1)).min() > 0.95
    assert (g16.sign() == g32.sign()).float().mean() > 0.9  # what sign-step cloaks follow
    np.testing.assert_array_equal(half.run(faces(3))["embedding"], full.run(faces(3))["embedding"])
    assert resolve_precision("float32", "cpu") == "float32" and resolve_precision("bfloat16", "cpu") == "bfloat16"
    assert resolve_precision("auto", "cpu") in ("float32", "bfloat16")
    with pytest.raises(ModelError, match="--attack-precision must be auto, float32 or bfloat16"):
        resolve_precision("float16", "cpu")
    with pytest.raises(ModelError, match="precision must be float32 or bfloat16"):
        load(path, precision="auto")


def test_an_all_zero_template_is_named_in_a_warning(tmp_path, small_data):
    """A model giving darker faces an all-zero embedding ran without a word: each such face scored cosine 0 against
    everyone. The run still measures it (a failure to enrol counts as errors) and says so in one line."""
    import warnings

    from audit import api
    from audit.config import AuditConfig
    from audit.errors import FaceAuditWarning
    from tests.builders import make_onnx

    model = make_onnx(tmp_path / "dark.onnx", zero_below=0.0)  # inputs normalised to about [-1, 1]: mean < 0 is dark
    cfg = AuditConfig(model=model, data=str(small_data), probes=["identity"], conditions=["clean"], bootstrap=20,
                      parity=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api.run_audit(cfg, tmp_path / "s.duckdb")
    said = [str(w.message) for w in caught if issubclass(w.category, FaceAuditWarning) and "all-zero" in str(w.message)]
    assert len(said) == 1 and re.search(r"all-zero template for \d+ of 160 faces under clean \(first: ", said[0]), said
