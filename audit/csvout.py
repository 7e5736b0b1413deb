"""CSV a person opens in a spreadsheet: file names, group labels and details come from outside, so no cell may run as a
formula."""

from __future__ import annotations

import csv

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_csv(frame: pd.DataFrame) -> bytes:
    """A table as CSV. Text that a spreadsheet would run as a formula (starting with = + - @, or a tab or carriage
    return, which some spreadsheets skip before reading the formula) is prefixed with ' : file names, group labels
    and details come from outside."""
    text = frame.astype(object).where(frame.notna(), "")
    for col in text.columns:
        text[col] = text[col].map(lambda v: "'" + v if isinstance(v, str) and v[:1] in FORMULA_STARTS else v)
    # Text is quoted: a carriage return inside a cell would otherwise end the row there for a spreadsheet.
    return text.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")
