"""Demographic groups of an attribute, one definition for every probe: age in fixed brackets, any other
attribute by its value.

The age brackets are half-open on the upper side (``[20, 31)`` is ``20-30``), so a fractional age such as
3.5, 12.5 or 30.5 falls in the bracket below the next edge and is never left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audit.data.manifest import is_regression

AGE_EDGES = np.array([4, 13, 20, 31, 46, 61])
"""Upper-exclusive edges of the 7 age brackets 0-3, 4-12, 13-19, 20-30, 31-45, 46-60, 61+."""
AGE_GROUPS = np.array(["0-3", "4-12", "13-19", "20-30", "31-45", "46-60", "61+"])
"""Label of each age bracket, indexed by :func:`age_bucket`."""


def age_bucket(age) -> np.ndarray:
    """Bracket index 0..6 of each age (fractional ages included; NaN gives 7, past the last bracket)."""
    return np.searchsorted(AGE_EDGES, np.asarray(age, float), side="right")


def group_labels(values: pd.Series, attribute: str) -> pd.Series:
    """The group of each row for ``attribute`` (object Series, None where the value is missing): an age bracket
    label for a regression attribute, else the value as text."""
    if is_regression(attribute):
        num = pd.to_numeric(values, errors="coerce").to_numpy(float)
        labels = np.where(np.isfinite(num), AGE_GROUPS[np.minimum(age_bucket(num), len(AGE_GROUPS) - 1)], None)
        return pd.Series(labels, index=values.index, dtype=object)
    return values.astype(object).where(values.notna(), None).map(lambda v: None if v is None else str(v))
