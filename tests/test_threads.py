"""Thread plan helpers: side-by-side calls keep their order and stop when the caller does."""

import threading
import time

from audit.threads import cores, side_by_side, torch_threads


def test_side_by_side_keeps_item_order_and_stops_with_its_caller():
    started = []
    lock = threading.Lock()

    def slow(i):
        with lock:
            started.append(i)
        time.sleep(0.05 * (5 - i % 5))  # later items finish first
        return i * i

    assert list(side_by_side(slow, range(10))) == [i * i for i in range(10)]
    started.clear()
    results = side_by_side(slow, range(40))
    assert next(results) == 0
    results.close()  # a cancelled run: the calls not yet started must not run
    assert len(started) <= 2 * cores() + 1 < 40
    assert list(side_by_side(slow, range(3), device="cuda")) == [0, 1, 4]  # one after another on a GPU


def test_torch_work_runs_at_the_threads_set_whatever_the_machine_or_the_call_count():
    """A review of reproducibility: torch's own default follows the machine and OMP_NUM_THREADS (one thread in a Ray
    worker), and sums split across threads differ in their last digits. A run sets torch's threads; a call made
    side by side runs single-threaded whether one call runs or many, alone or in a pool."""
    import torch

    before = torch.get_num_threads()
    with torch_threads(3):
        assert torch.get_num_threads() == 3
        for n in (1, 2, 5):
            assert list(side_by_side(lambda _: torch.get_num_threads(), range(n))) == [1] * n
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before
