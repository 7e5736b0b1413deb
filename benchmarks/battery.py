"""Seconds per probe and per sample model for the demo battery, plus peak memory.

Runs ``faceaudit demo --preset quick`` (every sample model, every probe, every pack, reports; the FR models'
membership runs on the planted set too, their probe seconds under ``membership_seconds``, outside each model's
``total_probes``) in a child process, then reads each probe's duration from the store it wrote. ``--membership`` also runs ``faceaudit run --data
sample-membership --probes membership`` for every sample FR model on its own (each in a child process, after the
set is materialised once) and reports the whole run's seconds per model; ``--no-demo`` skips the demo. Prints one
JSON object.

    python benchmarks/battery.py [--preset quick] [--out DIR] [--membership] [--no-demo]
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
    ap.add_argument("--membership", action="store_true", help="also time the membership probe on its sample set")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo (with --membership: that part only)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="faceaudit-battery-"))
    doc: dict = {"benchmark": "battery", "preset": args.preset}
    if not args.no_demo:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "audit.cli", "demo", "--out", str(out), "--preset", args.preset],
                       check=True, stdout=subprocess.DEVNULL)
        doc["wall_seconds"] = round(time.perf_counter() - t0, 1)
        doc["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
        models, doc["threads"] = _probe_seconds(out / "faceaudit.duckdb")
        # The membership runs (planted set) are apart from the sample-world battery, whose total is compared over time.
        doc["membership_seconds"] = {name: probes.pop("membership") for name, probes in models.items()
                                     if "membership" in probes}
        for probes in models.values():
            probes["total_probes"] = round(sum(v for k, v in probes.items() if k != "total_probes"), 1)
        doc["seconds_per_probe"] = models
    if args.membership:
        doc["membership"] = _membership(out, args.preset)
    print(json.dumps(doc, indent=1))


def _probe_seconds(db: Path) -> tuple[dict[str, dict], int | None]:
    """Seconds of every probe of every run in a store, by model name; and the runs' thread plan."""
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("""SELECT m.name, p.probe, p.seconds, r.environment FROM run_probes p JOIN runs r USING (run_id)
                          JOIN models m USING (model_id) ORDER BY m.name, p.started_at""").fetchall()
    con.close()
    models: dict[str, dict] = {}
    threads = None
    for name, probe, seconds, env in rows:
        models.setdefault(name, {})[probe] = round(seconds, 1)
        threads = json.loads(env).get("threads", threads)
    return models, threads


def _membership(out: Path, preset: str) -> dict:
    """The membership probe on ``sample-membership`` (200 members, 300 non-members, 4 images each) for every sample
    FR model: the probe's seconds (its share of the run: scoring, attacks, intervals; the embedding pass is the
    run's, before it) and each run's wall seconds (a child process: start-up, loading, embedding, probe, rules)."""
    from audit.run import sample_data, sample_models

    t0 = time.perf_counter()
    sample_data(membership=True)  # materialised once (cached), so no run below pays for drawing the faces
    result = {"materialise_seconds": round(time.perf_counter() - t0, 1), "runs": {}}
    out.mkdir(parents=True, exist_ok=True)
    db = out / "membership.duckdb"
    for model in sample_models():
        if not model.stem.startswith("fr-"):
            continue
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "audit.cli", "run", "--model", str(model), "--data", "sample-membership",
                        "--probes", "membership", "--conditions", "clean", "--preset", preset, "--db", str(db),
                        "--no-parity"], check=True, stdout=subprocess.DEVNULL)
        result["runs"][model.stem] = {"run_wall_seconds": round(time.perf_counter() - t0, 1)}
    for name, probes in _probe_seconds(db)[0].items():
        result["runs"].setdefault(name, {})["membership_seconds"] = probes.get("membership")
    return result


if __name__ == "__main__":
    main()
