"""Subject-disjoint splits: no person is ever on both sides."""

from __future__ import annotations

import numpy as np


def subject_folds(subjects: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds over subjects (seeded): returns (train_idx, test_idx) index pairs.

    Subjects are shuffled with ``seed`` and dealt round-robin to folds, so fold sizes in
    persons differ by at most one.
    """
    subjects = np.asarray(subjects)
    uniq = np.unique(subjects)
    if len(uniq) < k:
        raise ValueError(f"{k}-fold split needs at least {k} subjects, got {len(uniq)}")
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = dict(zip(uniq[order], np.arange(len(uniq)) % k))
    fold = np.array([fold_of[s] for s in subjects])
    idx = np.arange(len(subjects))
    return [(idx[fold != f], idx[fold == f]) for f in range(k)]


def subject_split(subjects: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One subject-disjoint train/test split with about ``test_fraction`` of the persons in test."""
    subjects = np.asarray(subjects)
    uniq = np.unique(subjects)
    rng = np.random.default_rng(seed)
    n_test = max(1, int(round(len(uniq) * test_fraction)))
    test_subjects = set(rng.choice(uniq, size=n_test, replace=False).tolist())
    is_test = np.array([s in test_subjects for s in subjects])
    idx = np.arange(len(subjects))
    return idx[~is_test], idx[is_test]
