"""Thread plan helpers: side-by-side calls keep their order and stop when the caller does."""

import threading
import time

from audit.threads import cores, side_by_side


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
