"""The streaming embedding pass with and without decoding the next chunk in the background. Prints one JSON object.

    .venv/bin/python benchmarks/prefetch.py [--data DIR] [--repeats 2] [--conditions clean,mask:surgical,...]

The pass (`_Embeddings.prepare`: decode and align each chunk of 512 faces, draw every condition, embed) runs
`--repeats` times each way, alternating, each into a fresh store, on the sample data (generated when `--data`
is not given: 300 people x 8 images) with fr-baseline. Reported: seconds per pass each way (the best and every
one), whether the embeddings are identical, and the inference device. `run_audit` prefetches when inference
runs on a GPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from audit import api
from audit.config import AuditConfig
from audit.intake import load as load_data
from audit.models import load as load_model
from audit.run.embeddings import Embeddings
from audit.store import Store

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--model", type=Path, default=ROOT / "sample_data" / "models" / "fr-baseline.onnx")
    ap.add_argument("--conditions", default="clean,mask:surgical,mask:cloth,mask:n95,sunglasses")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(api.sample_data(Path(tmp) / "data")[0])
        model = load_model(args.model, device=args.device)
        dataset = load_data(data)
        faces = dataset.usable(dataset.faces(tuple(model.profile.input.size)))
        conditions = args.conditions.split(",")
        config = AuditConfig(model=args.model, data=str(data), conditions=conditions)
        seconds: dict[str, list[float]] = {"off": [], "on": []}
        vectors: dict[str, np.ndarray] = {}
        for r in range(args.repeats):
            for way in ("off", "on"):
                with Store(Path(tmp) / f"{way}{r}.duckdb") as store:
                    embed = Embeddings(store, model, dataset, faces, config)
                    t0 = time.perf_counter()
                    embed.prepare(conditions, prefetch=way == "on")
                    seconds[way].append(round(time.perf_counter() - t0, 2))
                    vectors[way] = np.concatenate([embed.embeddings(c) for c in conditions])
        print(json.dumps({"benchmark": "prefetch", "images": len(faces), "conditions": conditions,
                          "device": model.ort.device, "seconds_off": seconds["off"], "seconds_on": seconds["on"],
                          "best_off": min(seconds["off"]), "best_on": min(seconds["on"]),
                          "identical": bool(np.array_equal(vectors["off"], vectors["on"]))}, indent=1))


if __name__ == "__main__":
    main()
