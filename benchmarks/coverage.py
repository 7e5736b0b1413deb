"""Empirical coverage of faceaudit's nominal 95% intervals on problems with a known answer.

Prints one JSON object: for FNMR, FMR, a leakage attacker's accuracy and PSR, at 60 and 200
persons, the share of simulated datasets whose interval held the truth (goal >= 0.92), how often
the truth lay below the interval, and the mean width. See audit/metrics/coverage.py for the
simulated populations.

    python benchmarks/coverage.py [--reps 500] [--boot 200]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # small fits: one thread each is fastest on 2 cores

from audit.metrics.coverage import SIMULATORS, coverage  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--boot", type=int, default=200)
    args = ap.parse_args()
    rows = []
    for metric in SIMULATORS:
        for persons in (60, 200):
            t0 = time.perf_counter()
            res = coverage(metric, persons, args.reps if metric != "leakage_accuracy" else max(args.reps // 2, 50),
                           args.boot)
            res["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(res)
    print(json.dumps({"benchmark": "coverage", "nominal": 0.95, "goal": 0.92, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
