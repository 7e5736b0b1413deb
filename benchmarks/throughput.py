"""Embedding-extraction throughput: faceaudit's path against a bare onnxruntime session.

    .venv/bin/python benchmarks/throughput.py [--model M.onnx] [--people 100] [--images 8] [--batch 64]

Prints one JSON object:

* ``end_to_end_ips``: images/s for decode + align + preprocess + inference (cold: no cache)
* ``tool_inference_ips``: images/s of ``OrtBackend.run_preprocessed`` on preprocessed arrays
* ``bare_ort_ips``: images/s of ``onnxruntime.InferenceSession.run`` on the same arrays and batch size
* ``ratio``: tool_inference_ips / bare_ort_ips (the target is >= 0.9)

Each timing is the median of ``--repeats`` passes, measured in this one process.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from audit.intake import load as load_dataset
from audit.models import load as load_model
from audit.models import preprocess
from audit.synth import Recipe, materialise

ROOT = Path(__file__).resolve().parents[1]


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=ROOT / "sample_data" / "models" / "fr-baseline.onnx")
    ap.add_argument("--people", type=int, default=100)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder, _, _ = materialise(Path(tmp) / "data", Recipe(people=args.people, images=args.images))
        model = load_model(args.model, batch_size=args.batch)
        backend = model.ort
        n = args.people * args.images

        def end_to_end():
            ds = load_dataset(folder)  # fresh object: no in-memory face cache
            backend.embed(ds.faces(tuple(model.profile.input.size)).images)

        end_to_end()  # warm-up (session, thread pools)
        t_e2e = median_time(end_to_end, max(1, args.repeats // 2))

        x = preprocess(load_dataset(folder).faces().images, model.profile)
        bare = ort.InferenceSession(str(args.model), providers=backend.providers)
        name = model.profile.input.name

        def bare_run():
            for s in range(0, len(x), args.batch):
                bare.run(None, {name: x[s:s + args.batch]})

        def tool_run():
            backend.run_preprocessed(x)

        bare_run(), tool_run()
        # Interleave the two so drift in machine load hits both alike.
        t_bare, t_tool = [], []
        for _ in range(args.repeats):
            t_bare.append(median_time(bare_run, 1))
            t_tool.append(median_time(tool_run, 1))
        np.testing.assert_allclose(backend.run_preprocessed(x[:8])["embedding"],
                                   bare.run(None, {name: x[:8]})[0], rtol=1e-5, atol=1e-5)
    result = {
        "model": args.model.name, "images": n, "batch": args.batch, "providers": backend.providers,
        "end_to_end_ips": round(n / t_e2e, 1),
        "tool_inference_ips": round(n / statistics.median(t_tool), 1),
        "bare_ort_ips": round(n / statistics.median(t_bare), 1),
        "ratio": round(statistics.median(t_bare) / statistics.median(t_tool), 3),
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
