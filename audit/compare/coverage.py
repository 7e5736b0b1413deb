"""Known-truth check of the paired intervals (see :mod:`audit.probes.coverage` for the single-run ones).

Two models see the same persons: each genuine comparison's score is a person effect shared by both
models (intra-class correlation 0.5, correlation 0.7 between the models) plus each model's own noise,
with true FNMR 0.05 for model A and 0.08 for model B at the threshold. The paired bootstrap of
:mod:`audit.compare.paired` gives B - A; the truth is 0.03.

``fmr``: the same for an impostor rate that compares two persons (a group's FMR): each impostor score is a
probe-person effect, a gallery-person effect (each shared by the models with correlation 0.7) and noise,
variances 0.2 / 0.2 / 0.6, with true FMR 0.01 for A and 0.02 for B; the paired bootstrap draws probe and
gallery persons independently (``pair_share``); the truth is 0.01.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from audit.compare.paired import PairedBootstrap, Series, _interval
from audit.metrics.stats import Estimate
from audit.probes.coverage import tally

TRUE_FNMR = (0.05, 0.08)
SHARED = 0.7  # correlation of a person's effect between the two models


def sim_paired_fnmr(rng, n: int, n_boot: int) -> tuple[Estimate, float]:
    m = 1 + rng.poisson(2.0, n)
    subjects = np.repeat(np.arange(n), m).astype(str)
    shared = rng.normal(0, 1, n)
    out = []
    for fnmr in TRUE_FNMR:
        own = SHARED * shared + np.sqrt(1 - SHARED ** 2) * rng.normal(0, 1, n)
        score = np.sqrt(0.5) * own[np.repeat(np.arange(n), m)] + np.sqrt(0.5) * rng.normal(0, 1, len(subjects))
        out.append((score < sps.norm.ppf(fnmr)).astype(float))  # unit variance: P(miss) = fnmr
    rows = np.arange(len(subjects))
    series = [Series("identity", "fnmr", "clean", "", "", "all", rows, subjects, "share", values=v) for v in out]
    boot = PairedBootstrap(subjects, n_boot, int(rng.integers(2**31)))
    (a, ab), (b, bb) = (boot.stat(s) for s in series)
    lo, hi = _interval(b - a, bb - ab, n)
    return Estimate(b - a, lo, hi, len(subjects)), TRUE_FNMR[1] - TRUE_FNMR[0]


TRUE_FMR = (0.01, 0.02)


def _shared(rng, n: int) -> np.ndarray:
    """Each model's person effects (unit variance), correlated SHARED between the two models."""
    common = rng.normal(0, 1, n)
    return np.stack([SHARED * common + np.sqrt(1 - SHARED ** 2) * rng.normal(0, 1, n) for _ in TRUE_FMR])


def sim_paired_fmr(rng, n: int, n_boot: int) -> tuple[Estimate, float]:
    m = 1 + rng.poisson(2.0, n)
    subjects = np.repeat(np.arange(n), m).astype(str)
    probe_fx, gallery_fx = _shared(rng, n), _shared(rng, n)
    impostor = np.repeat(np.arange(n), m)[:, None] != np.arange(n)[None, :]
    series = []
    for k, fmr in enumerate(TRUE_FMR):
        score = (np.sqrt(0.2) * probe_fx[k][np.repeat(np.arange(n), m)][:, None] + np.sqrt(0.2) * gallery_fx[k][None]
                 + np.sqrt(0.6) * rng.normal(0, 1, impostor.shape))
        accepts = np.argwhere((score >= sps.norm.isf(fmr)) & impostor)  # unit variance: P(accept) = fmr
        series.append(Series("identity", "group_fmr", "clean", "", "", "g", np.arange(len(subjects)), subjects,
                             "pair_share", gallery=np.arange(n).astype(str), accepts=accepts))
    boot = PairedBootstrap(subjects, n_boot, int(rng.integers(2**31)))
    (a, ab), (b, bb) = (boot.stat(s) for s in series)
    lo, hi = _interval(b - a, bb - ab, n)
    return Estimate(b - a, lo, hi, int(impostor.sum())), TRUE_FMR[1] - TRUE_FMR[0]


SIMULATORS = {"fnmr": (sim_paired_fnmr, "fnmr difference B - A (paired)"),
              "fmr": (sim_paired_fmr, "group fmr difference B - A (paired, two-way)")}


def coverage(n: int, reps: int, n_boot: int = 200, seed: int = 0, metric: str = "fnmr") -> dict:
    """Share of simulated datasets whose paired interval of B - A holds the true difference."""
    rng = np.random.default_rng([seed, n, 7])
    sim, label = SIMULATORS[metric]
    (row,) = tally({label: sim(rng, n, n_boot)} for _ in range(reps)).values()
    return {"simulator": "paired", "metric": label, "persons": n, "n_boot": n_boot, **row}
