"""Gradient attacks one after another on every core, or single-threaded side by side. Prints one JSON object.

    .venv/bin/python benchmarks/side_by_side.py [--model ONNX] [--attacks 4] [--steps 30] [--repeats 2]

Each attack is the cloak probe's white-box OPOM-centre attack (fixed steps, no plateau, so both ways do the
same work) on the same 12 people x 4 images of the sample data, with its own seed. Run one after another
with torch on every core, and through ``audit.threads.side_by_side`` (one single-threaded attack per
core), alternating ``--repeats`` times. Reported: seconds each way (best and every one) and whether the
perturbations are identical between repeats of the same way (they must be: every attack has its own seed).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from audit import api
from audit.conditions.cloaks import make_cloaks
from audit.intake import load as load_data
from audit.models import load as load_model
from audit.threads import cores, plan, side_by_side

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "sample_data" / "models" / "fr-baseline.onnx")
    ap.add_argument("--attacks", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        faces = load_data(api.sample_data(Path(tmp) / "data", people=12, images=4)[0]).faces()
        images = faces.images.reshape(12, 4, *faces.images.shape[1:])
    backend = load_model(args.model).torch()

    def attack(seed: int) -> np.ndarray:
        return make_cloaks(backend.embed_tensor, images, "opom-centre", 8.0, steps=args.steps, seed=seed)

    seeds = list(range(args.attacks))
    times: dict[str, list[float]] = {"one_after_another": [], "side_by_side": []}
    results: dict[str, list[list[np.ndarray]]] = {k: [] for k in times}
    for _ in range(args.repeats):
        for way in times:
            t0 = time.perf_counter()
            out = list(side_by_side(attack, seeds)) if way == "side_by_side" else [attack(s) for s in seeds]
            times[way].append(round(time.perf_counter() - t0, 2))
            results[way].append(out)
    same = {way: all(all(np.array_equal(a, b) for a, b in zip(runs[0], r)) for r in runs[1:])
            for way, runs in results.items()}
    print(json.dumps({"benchmark": "side_by_side", "model": args.model.name, "cores": cores(),
                      "torch_threads_one_after_another": torch.get_num_threads(), "attacks": args.attacks,
                      "steps": args.steps, "images_per_step": int(np.prod(images.shape[:2])),
                      "best_seconds": {k: min(v) for k, v in times.items()}, "seconds": times,
                      "reproducible": same, "threads": plan()}, indent=1))


if __name__ == "__main__":
    main()
