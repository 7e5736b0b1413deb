"""Seeded random streams: every random choice in faceaudit comes from here.

``rng_for(seed, *keys)`` gives an independent generator for each (seed, key...) tuple, so
the stream of one image or one fold never depends on the order other work ran in.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *keys: object) -> int:
    digest = hashlib.sha256(repr((int(seed),) + keys).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """An independent NumPy generator for (seed, keys...), stable across platforms."""
    return np.random.default_rng(derive_seed(seed, *keys))
