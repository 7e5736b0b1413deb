"""Peak memory and time of `faceaudit run --probes leakage,identity` as the dataset grows. Prints one JSON object.

    .venv/bin/python benchmarks/memory.py [--sizes 1000,10000,50000] [--preset quick] [--images-per-person 8]

For each size the synthetic sample world is scaled (`faceaudit sample-data --people N/8 --images 8`) into a
cache folder (generated once, reused), then one run of the leakage and identity probes (default conditions,
fr-baseline) executes in a child process, so its peak RSS (`ru_maxrss` of the child) is its own. Reported per
size: dataset images, images the run used (the preset's budget), peak RSS, wall seconds and seconds per
dataset image and per used image, and the run's own embedding-pass and probe seconds from its store.
The goal (issue 14): peak RSS at 50k images within 1.2x of that at 1k; time per image constant or falling.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("FACEAUDIT_BENCH_CACHE", Path(tempfile.gettempdir()) / "faceaudit-bench-data"))


def child(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one faceaudit command in a fresh process."""
    code = ("import resource, runpy, sys; sys.argv = ['faceaudit', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('audit.cli', run_name='__main__')\nexcept SystemExit as e:\n"
            "    code = e.code\nelse:\n    code = 0\n"
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(code)")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"faceaudit {' '.join(args)} failed:\n{res.stderr[-2000:]}")
    peak = next(int(line.split()[1]) for line in res.stderr.splitlines() if line.startswith("PEAK"))
    return wall, peak / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--images-per-person", type=int, default=8)
    ap.add_argument("--model", type=Path, default=ROOT / "sample_data" / "models" / "fr-baseline.onnx")
    args = ap.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        people = max(2, size // args.images_per_person)
        data = CACHE / f"{people}x{args.images_per_person}"
        if not (data / "manifest.csv").exists():
            child(["sample-data", "--out", str(data), "--people", str(people), "--images",
                   str(args.images_per_person)])
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "s.duckdb"
            wall, peak = child(["run", "--model", str(args.model), "--data", str(data), "--probes", "leakage,identity",
                                "--preset", args.preset, "--db", str(db), "--no-parity"])
            con = duckdb.connect(str(db), read_only=True)
            probes = dict(con.execute("SELECT probe, seconds FROM run_probes").fetchall())
            used = json.loads(bytes(con.execute("SELECT data FROM artifacts WHERE name = 'used.json'").fetchone()[0]))
            row = con.execute("SELECT data FROM artifacts WHERE name = 'embeddings.json'").fetchone()
            emb = json.loads(bytes(row[0])) if row else {"seconds": None}  # before streaming: no separate pass
            con.close()
        images = people * args.images_per_person
        rows.append({"dataset_images": images, "used_images": used["images"], "peak_rss_mb": round(peak),
                     "wall_seconds": round(wall, 1), "ms_per_dataset_image": round(1000 * wall / images, 2),
                     "ms_per_used_image": round(1000 * wall / used["images"], 2),
                     "embedding_pass_seconds": emb["seconds"],
                     "probe_seconds": {k: round(v, 1) for k, v in probes.items()}})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    base = rows[0]["peak_rss_mb"]
    print(json.dumps({"benchmark": "memory", "preset": args.preset, "model": args.model.stem, "runs": rows,
                      "peak_rss_ratio_largest_to_smallest": round(rows[-1]["peak_rss_mb"] / base, 3),
                      "goal_ratio": 1.2}, indent=1))


if __name__ == "__main__":
    main()
