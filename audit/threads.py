"""Thread counts, set deliberately.

torch, onnxruntime and BLAS each start a pool as wide as the machine. Many small fits (the
leakage attackers: a logistic regression or an MLP on a few thousand 128-d vectors) spend more
time synchronising those pools than computing, and two pools side by side oversubscribe the
cores: on a busy 2-core machine one thread ran the same MLP fit 9x faster than the default.
So small fits run single-threaded, one per core side by side; big batched work (onnxruntime
inference, the inversion decoder) uses every core. Gradient attacks on a few dozen images (the
cloaks) sit in between: one such attack does not keep two intra-op threads busy, so on the CPU
independent attacks run side by side, single-threaded (``benchmarks/side_by_side.py``). The plan is
recorded with each run.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def plan(torch_batched: int | None = None) -> dict[str, int]:
    """Threads used by each kind of work in this process (stored in the run's environment):
    ``side_by_side_on_cpu`` single-threaded calls at once (leakage fits, cloak attacks) on the CPU;
    ``torch_batched`` the run's torch threads (``--attack-threads``; every core by default)."""
    n = cores()
    return {"cores": n, "onnxruntime_intra_op": n, "torch_batched": torch_batched or n, "small_fits": 1,
            "side_by_side_on_cpu": n}


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the enclosed block with torch's intra-op pool at ``n`` threads, then restore it. A run sets it
    deliberately: torch's default follows the machine and the environment (a Ray worker, or a container setting
    ``OMP_NUM_THREADS=1``, gets one thread), and a sum split across threads adds up in another order, so the
    inversion decoder trained with 1 and with 2 threads gave rates that differ by up to about 0.01."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def side_by_side(fn: Callable[[T], R], items: Iterable[T], device: str = "cpu") -> Iterator[R]:
    """``fn`` over ``items``, results in item order. On the CPU the calls run single-threaded side by side, one
    per core: for small fits and for gradient attacks on a few dozen images, two one-thread calls at once
    did about a fifth more work than one two-thread call after another (``benchmarks/README.md``). On a GPU
    they run one after another: the device is what they share. Each call must seed its own generators, so
    the results do not depend on which thread ran it."""
    items = list(items)
    if device != "cpu":
        yield from map(fn, items)
        return
    if cores() < 2 or len(items) < 2:  # one after another, but single-threaded as side by side: the same numbers
        with small_fits():  # whether one call or ten, on one core or many
            yield from map(fn, items)
        return
    with small_fits():
        pool = ThreadPoolExecutor(max_workers=cores())
        try:
            futures = [pool.submit(fn, item) for item in items]
            for future in futures:
                yield future.result()
        finally:  # a caller that stops early (a cancelled run) does not wait for the calls not yet started
            pool.shutdown(wait=True, cancel_futures=True)
