"""Seconds per probe and per sample model for the demo battery, plus peak memory.

Runs ``faceaudit demo --preset quick`` (every sample model, every probe, every pack, reports) in a
child process, then reads each probe's duration from the store it wrote. Prints one JSON object.

    python benchmarks/battery.py [--preset quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--out", type=Path, default=None, help="demo folder (default: a temporary one)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="faceaudit-battery-"))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "audit.cli", "demo", "--out", str(out), "--preset", args.preset],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    con = duckdb.connect(str(out / "faceaudit.duckdb"), read_only=True)
    rows = con.execute("""SELECT m.name, p.probe, p.seconds, r.environment FROM run_probes p JOIN runs r USING (run_id)
                          JOIN models m USING (model_id) ORDER BY m.name, p.started_at""").fetchall()
    models: dict[str, dict] = {}
    threads = None
    for name, probe, seconds, env in rows:
        models.setdefault(name, {})[probe] = round(seconds, 1)
        threads = json.loads(env).get("threads", threads)
    for probes in models.values():
        probes["total_probes"] = round(sum(v for k, v in probes.items() if k != "total_probes"), 1)
    print(json.dumps({"benchmark": "battery", "preset": args.preset, "wall_seconds": round(wall, 1),
                      "peak_rss_mb": round(peak_mb, 1), "threads": threads, "seconds_per_probe": models},
                     indent=1))


if __name__ == "__main__":
    main()
