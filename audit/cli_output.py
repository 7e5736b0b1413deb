"""How the CLI prints: user strings as text (never rich markup), identifiers whole, JSON for scripts.

Model names, paths, ONNX metadata and manifest values come from outside; rich would read ``[b]`` or
``[/x]`` in them as markup (and crash on a stray closing tag), so every such string reaches the
console as :class:`rich.text.Text`. Hashes, run ids and paths are what auditors copy into their
records, so they are printed on lines rich never wraps or cuts (``soft_wrap``), and tables keep their
identifier columns at full width.
"""

from __future__ import annotations

import json
import re
import sys

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from audit.evidence import export


CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Characters a terminal acts on instead of showing (ESC starts colour and cursor sequences); tab and newline stay."""


def escaped(value) -> str:
    """``value`` as a string with the control characters a terminal acts on written as ``\\xNN``."""
    raw = "" if value is None else str(value)
    return CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", raw)


def text(value, style: str = "") -> Text:
    """A cell or line from data: shown literally, whatever brackets or control characters it contains (these as
    ``\\xNN``: a model name must not recolour or rewrite the terminal)."""
    return Text(escaped(value), style=style)


def line(console: Console, *parts) -> None:
    """One literal line (strings are not markup), never wrapped or cut by rich."""
    out = Text()
    for p in parts:
        out.append(p if isinstance(p, Text) else text(p))
    console.print(out, soft_wrap=True, highlight=False)


def kv(console: Console, title: str, rows: list[tuple[str, object]], width: int = 18) -> None:
    """A title and ``key  value`` lines: values (hashes, paths) are printed whole at any terminal width."""
    line(console, Text(title, style="bold"))
    for key, value in rows:
        line(console, f"  {key:<{width}}", value if isinstance(value, Text) else text(value))


def table(columns: list[str], ids: tuple[str, ...] = (), numbers: tuple[str, ...] = (), title: str = "") -> Table:
    """A table whose identifier and number columns are never cut; long text columns fold instead."""
    # No vertical rules: at 80 columns every character goes to the values.
    t = Table(title=Text(title) if title else None, box=box.SIMPLE_HEAD, pad_edge=False)
    for c in columns:
        if c in ids or c in numbers:
            t.add_column(c, no_wrap=True, overflow="ignore", justify="right" if c in numbers else "left")
        else:
            t.add_column(c, overflow="fold")
    return t


def fit_ids(t: Table, rows: list[list[str]], ids: tuple[str, ...]) -> None:
    """Give identifier columns the width of their longest value, so rich shrinks other columns instead."""
    for col in t.columns:
        if col.header in ids:
            i = t.columns.index(col)
            col.min_width = max([len(str(col.header))] + [len(r[i]) for r in rows])


def records(df: pd.DataFrame) -> list[dict]:
    """DataFrame rows as JSON-ready dicts, as the export writes them (NaN -> null, +-inf -> "inf" / "-inf",
    timestamps as ISO 8601): JSON has no infinity, and an infinite disparity must not read as a missing one."""
    return [] if df is None or len(df) == 0 else export.table_records(df)


def record(d: dict) -> dict:
    return records(pd.DataFrame([d]))[0]


def print_json(obj) -> None:
    """JSON on stdout, untouched by rich (no markup, no wrapping, no colour)."""
    sys.stdout.write(json.dumps(obj, indent=1, sort_keys=False, default=str, allow_nan=False) + "\n")
