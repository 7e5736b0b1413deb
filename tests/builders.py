"""Tiny ONNX models built in code (a 2-layer network), so tests need no committed binaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_onnx(path: Path, *, batch: int | str = "N", out_dim: int = 16, size: int = 112, layout: str = "NCHW",
              nan: bool = False, last_op: str | None = None, seed: int = 0, external: bool = False,
              outputs: int = 1, zero_below: float | None = None) -> Path:
    """AveragePool(8) -> Flatten -> MatMul -> Relu -> MatMul [-> last_op] as an embedding model; ``zero_below``: the
    embedding is all zeros for an input whose mean is below it (a model that gives darker faces no template)."""
    rng = np.random.default_rng(seed)
    pooled = 3 * (size // 8) ** 2
    w1 = numpy_helper.from_array(rng.normal(0, 0.05, (pooled, 32)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.2, (32, out_dim)).astype(np.float32), "w2")
    shape = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)
    nodes = []
    src = "input"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]))
        src = "nchw"
    nodes += [helper.make_node("AveragePool", [src], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
              helper.make_node("Flatten", ["p"], ["f"], axis=1),
              helper.make_node("MatMul", ["f", "w1"], ["h"]),
              helper.make_node("Relu", ["h"], ["r"]),
              helper.make_node("MatMul", ["r", "w2"], ["e0"])]
    inits = [w1, w2]
    last = "e0"
    if nan:
        inits.append(numpy_helper.from_array(np.array([np.nan], np.float32), "nanc"))
        nodes.append(helper.make_node("Mul", ["e0", "nanc"], ["e1"]))
        last = "e1"
    if last_op:
        nodes.append(helper.make_node(last_op, [last], ["e2"]))
        last = "e2"
    if zero_below is not None:
        inits.append(numpy_helper.from_array(np.array(zero_below, np.float32), "zt"))
        nodes += [helper.make_node("ReduceMean", [src], ["mu"], axes=[1, 2, 3], keepdims=0),
                  helper.make_node("Greater", ["mu", "zt"], ["lit"]),
                  helper.make_node("Cast", ["lit"], ["litf"], to=TensorProto.FLOAT),
                  helper.make_node("Unsqueeze", ["litf", "one"], ["gate"]),
                  helper.make_node("Mul", [last, "gate"], ["e3"])]
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "one"))
        last = "e3"
    nodes.append(helper.make_node("Identity", [last], ["embedding"]))
    outs = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, out_dim])]
    for k in range(1, outputs):
        nodes.append(helper.make_node("Identity", [last], [f"out{k}"]))
        outs.append(helper.make_tensor_value_info(f"out{k}", TensorProto.FLOAT, [batch, out_dim]))
    graph = helper.make_graph(nodes, "tiny", [x], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="faceaudit-tests")
    model.ir_version = 8
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


def store_with_run(db: Path, model_name: str, producer: str, metric: dict) -> str:
    """A store holding one completed run of a model named ``model_name`` with one metric row (strings as given)."""
    from datetime import datetime

    import pandas as pd

    from audit.store import Store

    with Store(db) as s:
        s.write("models", pd.DataFrame([{"model_id": "9" * 64, "name": model_name, "path": "/x/[/b].onnx",
                                         "size_bytes": 1, "opset": 17, "producer": producer, "info": "{}",
                                         "profile": "{}", "added_at": datetime(2026, 11, 24, 10, 0, 0)}]))
        import audit

        # the environment a run records: a run of unknown version is never judged as this faceaudit's
        run_id = s.create_run("9" * 64, "d" * 64, {"seed": 0}, 0, {"faceaudit": audit.__version__})
        s.set_run_status(run_id, "completed")
        s.write("metrics", pd.DataFrame([{"run_id": run_id, "n": 1200, "value": 0.1234, "ci_low": 0.05,
                                          "ci_high": 0.2, **metric}]))
    return run_id


def degrade_onnx(src: Path, dst: Path, alpha: float, seed: int = 0, out: str = "embedding") -> Path:
    """A copy of an embedding model whose embeddings are degraded: ``emb + alpha * |emb| * u(x)``, with ``u(x)`` a
    unit vector that a fixed random projection makes of the (8x8-pooled) input image, so each image gets its own
    deterministic noise. Everything else (input, output name, profile) stays as it was."""
    model = onnx.load(str(src))
    g = model.graph
    dim = next(o for o in g.output if o.name == out).type.tensor_type.shape.dim[1].dim_value
    inp = g.input[0]
    size = inp.type.tensor_type.shape.dim[2].dim_value
    pooled = 3 * (size // 8) ** 2
    rng = np.random.default_rng(seed)
    g.initializer.extend([numpy_helper.from_array(rng.normal(0, 1, (pooled, dim)).astype(np.float32), "dg_r"),
                          numpy_helper.from_array(np.array([alpha], np.float32), "dg_a")])
    for node in g.node:  # the old output becomes an inner tensor
        node.output[:] = ["dg_e" if o == out else o for o in node.output]
    g.node.extend([helper.make_node("AveragePool", [inp.name], ["dg_p"], kernel_shape=[8, 8], strides=[8, 8]),
                   helper.make_node("Flatten", ["dg_p"], ["dg_f"], axis=1),
                   helper.make_node("MatMul", ["dg_f", "dg_r"], ["dg_n"]),
                   helper.make_node("ReduceL2", ["dg_n"], ["dg_nn"], axes=[1], keepdims=1),
                   helper.make_node("Div", ["dg_n", "dg_nn"], ["dg_u"]),
                   helper.make_node("ReduceL2", ["dg_e"], ["dg_en"], axes=[1], keepdims=1),
                   helper.make_node("Mul", ["dg_u", "dg_en"], ["dg_s"]),
                   helper.make_node("Mul", ["dg_s", "dg_a"], ["dg_d"]),
                   helper.make_node("Add", ["dg_e", "dg_d"], [out])])
    onnx.save_model(model, str(dst))
    return dst
