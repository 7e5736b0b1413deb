"""Thread counts, set deliberately.

torch, onnxruntime and BLAS each start a pool as wide as the machine. Many small fits (the
leakage attackers: a logistic regression or an MLP on a few thousand 128-d vectors) spend more
time synchronising those pools than computing, and two pools side by side oversubscribe the
cores: on a busy 2-core machine one thread ran the same MLP fit 9x faster than the default.
So small fits run single-threaded; big batched work (onnxruntime inference, gradient attacks
through the torch backend) uses every core. The plan is recorded with each run.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def plan() -> dict[str, int]:
    """Threads used by each kind of work in this process (stored in the run's environment)."""
    n = cores()
    return {"cores": n, "onnxruntime_intra_op": n, "torch_batched": n, "small_fits": 1}


@contextmanager
def small_fits() -> Iterator[None]:
    """Run the enclosed block with torch and BLAS/OpenMP pools at one thread, then restore them."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)
