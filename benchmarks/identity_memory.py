"""Memory the identity probe's statistics take per comparison in its score matrix. Prints one JSON object.

    .venv/bin/python benchmarks/identity_memory.py [--persons 1000,2000,3500] [--boot 200]

The matrix is every probe image against every gallery image (the gallery: one image per person), so it grows as
the square of the images a run uses; the probe holds the clean matrix and one condition's at a time. For each size
a simulated world (audit/probes/coverage.py ``identity_draw``: 2 + Poisson(1) images per person) is drawn, and the
probe's own code runs on it as it does per condition: the clean thresholds, the ROC points, ``_verification`` (FNMR,
FMR, TAR at FMR 1e-2 and 1e-3 with its own-threshold intervals, EER, AUC, rank-1, the outcomes kept for paired
comparisons) and ``_demographics`` (one attribute, two groups). Peak traced memory (numpy's allocations are traced)
from before the draw, over the matrix's entries: ``bytes_per_comparison`` includes the two score matrices (16 bytes)
and the simulator's person-pair effects (8 bytes per person pair).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from audit.metrics import verification as ver  # noqa: E402
from audit.metrics.stats import SubjectBootstrap  # noqa: E402
from audit.probes.coverage import identity_draw  # noqa: E402
from audit.probes.identity import IdentityProbe, _person_pairs  # noqa: E402


def measure(persons: int, n_boot: int) -> dict:
    rng = np.random.default_rng(0)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    subjects, s, gen, own, labels = identity_draw(rng, persons)
    s_cond = s + 0.01  # a condition's matrix beside the clean one
    boot = SubjectBootstrap(subjects, n_boot, 1, "identity")
    tracemalloc.reset_peak()
    imp_mask = np.ones_like(s, dtype=bool)
    imp_mask[np.arange(len(own)), own] = False
    pairs = _person_pairs(boot, own, persons)
    taus = {t: ver.threshold_at_fmr(s[imp_mask], t) for t in (1e-2, 1e-3)}
    label = {t: f"fmr={t:g}" for t in taus}
    probe = IdentityProbe()
    ver.roc_points(s_cond[imp_mask], gen)
    probe._verification("c", s_cond, gen, imp_mask, pairs, pairs.sum(imp_mask), own, taus, label, boot,
                        np.random.default_rng(1), [])
    probe._demographics("c", s_cond, gen, imp_mask, pairs, {"grp": (labels[own], labels)}, taus[1e-3], label[1e-3],
                        boot, [])
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return {"persons": persons, "probe_images": int(s.shape[0]), "comparisons": int(s.size),
            "peak_mb": round(peak / 2**20), "bytes_per_comparison": round(peak / s.size, 1),
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", default="1000,2000,3500")
    ap.add_argument("--boot", type=int, default=200)
    args = ap.parse_args()
    print(json.dumps({"sizes": [measure(int(n), args.boot) for n in args.persons.split(",")]}, indent=2))


if __name__ == "__main__":
    main()
