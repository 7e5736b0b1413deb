"""Empirical coverage of faceaudit's nominal 95% intervals on problems with a known answer.

Prints one JSON object: for every interval the rules read, at the sizes where verdicts are made, the share of
simulated datasets whose interval held the truth (goal >= 0.92), how often the truth lay below the interval,
and the mean width. The identity rows (FNMR, FMR, TAR, EER, ROC AUC, group FNMR/FMR) come from the identity
probe's own code on scores with per-person effects (genuine intra-class correlation 0.5; impostor
probe-person, gallery-person and pair effects), at 30, 60 and 200 persons and at 120 persons with a 5-person
group; the leakage rows from the leakage probe's own interval code over 5 folds x 2 repeats; the paired
rows from the comparison's paired person bootstrap (two models, correlated person effects, FNMR 0.05 vs
0.08, a group FMR 0.01 vs 0.02 resampled on both sides, and TAR at FMR 0.01, 0.95 vs 0.92, each model's threshold
chosen again on every replicate, and held fixed for comparison); the membership rows from the membership probe's own
cross-validation and interval code (5 stratified folds x 2 repeats) on per-person attack scores with a planted
member signal, at 60 + 60 and 200 + 200 persons ("persons" = members = non-members), against the truth on new
persons from the same population, and the TPR at FPR 0.01 that the rules read at 300 members + 3,000 non-members
(the fewest that support it); the inversion rows SAR type I at the victims' FMR 1e-2 threshold by the inversion
probe's own calibration and interval code (and, for reference, with that threshold held fixed). See
audit/probes/coverage.py and audit/compare/coverage.py for the simulated populations.

    python benchmarks/coverage.py [--reps 300] [--boot 200]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # small fits: one thread each is fastest on 2 cores

from audit.compare.coverage import coverage as paired_coverage  # noqa: E402
from audit.probes.coverage import coverage  # noqa: E402

PLAN = [("fnmr", (60, 200)), ("fmr", (60, 200)), ("psr", (60, 200)), ("leakage", (60, 200)),
        ("identity", (30, 60, 200)), ("identity_small_group", (120,)), ("membership", (60, 200)),
        ("membership_low_fpr", (300,)), ("inversion", (60, 150, 300)),
        ("identity_estimated_threshold", (60, 200))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--boot", type=int, default=200)
    args = ap.parse_args()
    rows = []
    for simulator, sizes in PLAN:
        for persons in sizes:
            t0 = time.perf_counter()
            res = coverage(simulator, persons, args.reps if persons < 200 else max(args.reps * 2 // 3, 50), args.boot)
            for r in res:
                r["seconds"] = round(time.perf_counter() - t0, 1)
            rows += res
    # paired differences between two models on the same persons
    for metric in ("fnmr", "fmr", "tar", "tar_fixed", "fnmr_threshold", "fnmr_fixed", "membership_tpr",
                   "membership_tpr_fixed", "membership_auc"):
        for persons in (60, 200):
            t0 = time.perf_counter()
            res = paired_coverage(persons, args.reps if persons < 200 else max(args.reps * 2 // 3, 50), args.boot,
                                  metric=metric)
            res["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(res)
    print(json.dumps({"benchmark": "coverage", "nominal": 0.95, "goal": 0.92, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
