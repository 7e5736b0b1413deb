"""Subject-disjoint splits: no person is ever on both sides."""

from __future__ import annotations

import numpy as np


def subject_folds(subjects: np.ndarray, k: int, seed: int,
                  strata: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds over subjects (seeded): returns (train_idx, test_idx) index pairs.

    Subjects are shuffled with ``seed`` and dealt round-robin to folds, so fold sizes in
    persons differ by at most one. With ``strata`` (one label per image; a person's first image's
    label counts), persons are dealt stratum by stratum, continuing round the folds, so every
    fold holds each class in about the proportion of the whole: with unstratified folds a fold
    whose test persons lean to one class trains on the other, which biases a classifier's
    cross-validated accuracy downwards on small samples (leakage understated).
    """
    subjects = np.asarray(subjects)
    uniq, first = np.unique(subjects, return_index=True)
    if len(uniq) < k:
        raise ValueError(f"{k}-fold split needs at least {k} subjects, got {len(uniq)}")
    order = np.random.default_rng(seed).permutation(len(uniq))
    if strata is not None:
        person_stratum = np.asarray(strata).astype(str)[first]
        order = order[np.argsort(person_stratum[order], kind="stable")]
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
