"""How a stored result's ``setting`` names an operating point, written and read in one place.

A result measured at a chosen error rate carries that rate in its setting: ``fmr=0.001`` (identity: a false match
rate), ``strongest;fpr=0.1`` (membership: the attack, then its false-positive target). When the data cannot back the
rate (too few impostor comparisons or non-member persons for 30 expected errors), the setting ends in
``;unsupported``: a rule naming the plain setting never sees such a row, and a rule that matches it may warn or fail
on it, never pass.
"""

from __future__ import annotations

UNSUPPORTED = ";unsupported"


def operating_point(key: str, rate: float, unsupported: bool = False, attack: str | None = None) -> str:
    """``[attack;]key=rate[;unsupported]``, the rate written with ``:g`` (``fpr=0.1``, ``fmr=0.001``)."""
    point = f"{key}={rate:g}" + (UNSUPPORTED if unsupported else "")
    return f"{attack};{point}" if attack else point


def rate_of(setting: str, key: str) -> float | None:
    """The rate a setting names for ``key`` (``fpr``, ``fmr``), or None when it names none."""
    for part in str(setting).split(";"):
        name, sep, value = part.partition("=")
        if sep and name == key:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def is_unsupported(setting: str) -> bool:
    """Whether the setting's operating point is one the data cannot back."""
    return str(setting).endswith(UNSUPPORTED)


def supported_form(setting: str) -> str:
    """The setting without its ``;unsupported`` mark (the name a rule would give it)."""
    return str(setting).removesuffix(UNSUPPORTED)
