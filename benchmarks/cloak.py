"""Cloak generation: time per person and images/s, batched over people and images against a loop.

    .venv/bin/python benchmarks/cloak.py [--people 12] [--images 4] [--steps 16] [--method opom-affine]

The loop computes the same cloaks one person at a time (universal methods) or one image at a
time (``--method pgd``).

Surrogate: fr-baseline through the torch backend (CPU, or CUDA when available). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from audit.conditions.cloaks import make_cloaks
from audit.intake import load
from audit.models import load as load_model
from audit.synth import Recipe, materialise

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=12)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--method", default="opom-affine")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, _, _ = materialise(Path(tmp) / "d", Recipe(people=args.people, images=args.images))
        faces = load(folder).faces().images.reshape(args.people, args.images, 112, 112, 3)
    backend = load_model(ROOT / "sample_data" / "models" / "fr-baseline.onnx").torch()
    make_cloaks(backend.embed_tensor, faces[:1], args.method, 8, 1)  # warm-up
    t = time.perf_counter()
    batched = make_cloaks(backend.embed_tensor, faces, args.method, 8, args.steps, seed=0)
    t_batch = time.perf_counter() - t
    t = time.perf_counter()
    if args.method == "pgd":  # per image
        loop = np.stack([np.concatenate([make_cloaks(backend.embed_tensor, faces[i:i + 1, j:j + 1], "pgd", 8,
                                                     args.steps, seed=0) for j in range(args.images)], axis=1)[0]
                         for i in range(args.people)])
    else:
        loop = np.concatenate([make_cloaks(backend.embed_tensor, faces[i:i + 1], args.method, 8, args.steps, seed=0)
                               for i in range(args.people)])
    t_loop = time.perf_counter() - t
    n = args.people * args.images
    print(json.dumps({"device": backend.device, "method": args.method, "people": args.people,
                      "images_per_person": args.images, "steps": args.steps,
                      "batched_seconds_per_person": round(t_batch / args.people, 3),
                      "batched_images_per_s": round(n * args.steps / t_batch, 1),
                      "loop_seconds_per_person": round(t_loop / args.people, 3),
                      "loop": "per image" if args.method == "pgd" else "per person",
                      "speedup": round(t_loop / t_batch, 2), "same_shape": batched.shape == loop.shape}))


if __name__ == "__main__":
    main()
