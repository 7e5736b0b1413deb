"""Checks that a rule can ever fire: a rule that can never match a stored row would sit in every
report as ``not_applicable`` and nobody would notice that the policy it stands for is not checked.

Each function raises ``ValueError`` with a message naming the bad value (the engine adds file, rule
and field).
"""

from __future__ import annotations

import fnmatch
import re

from audit.conditions import MASK_TYPES, parse
from audit.conditions.cloaks import METHODS as CLOAK_METHODS
from audit.conditions.purify import PURIFIERS
from audit.data.manifest import RESERVED
from audit.errors import ConfigError
from audit.metrics.catalogue import METRICS

GLOB = re.compile(r"[*?\[]")
# Condition kinds a stored metric row can carry: the run's conditions plus the cloak probe's own.
KINDS = ("clean", "mask", "sunglasses", "patch", "freqmix", "cloak", "purify")
ARGS = {"mask": (*MASK_TYPES, *(f"{m}@template" for m in MASK_TYPES)), "purify": PURIFIERS}
COMPARATOR = re.compile(r"^\s*(<=|>=|<|>|==|!=)\s*(\S+)\s*$")


def probes() -> set[str]:
    """Probes that store metrics (from the metric catalogue, which plugins extend)."""
    return {m["probe"] for m in METRICS.values()}


def check_probe(probe: str) -> None:
    if probe not in probes():
        raise ValueError(f"unknown probe {probe!r}; known: {', '.join(sorted(probes()))}")


def check_probe_metric(probe: str, metric: str) -> None:
    made_by = METRICS[metric]["probe"]
    if made_by != probe:
        raise ValueError(f"the {probe} probe never stores {metric!r} (the {made_by} probe does)")


def _check_part(part: str, whole: str) -> None:
    kind, _, arg = part.partition(":")
    kinds = [k for k in KINDS if fnmatch.fnmatchcase(k, kind)]
    if not kinds:
        raise ValueError(f"condition {whole!r}: {kind!r} matches no condition kind ({', '.join(KINDS)})")
    if GLOB.search(part):
        for k in kinds:  # a glob on the argument must still match some argument of a kind that has a fixed list
            if k not in ARGS or not arg or any(fnmatch.fnmatchcase(a, arg) for a in ARGS[k]):
                return
        raise ValueError(f"condition {whole!r}: {arg!r} matches no {kinds[0]} ({', '.join(ARGS[kinds[0]])})")
    if kind == "cloak":
        method, _, eps = arg.partition("@")
        if method not in CLOAK_METHODS or not re.fullmatch(r"\d+(\.\d+)?", eps):
            raise ValueError(f"condition {whole!r}: a cloak condition is cloak:<method>@<eps>, method one of "
                             f"{', '.join(CLOAK_METHODS)}")
    elif kind == "purify":
        if arg not in PURIFIERS:
            raise ValueError(f"condition {whole!r}: unknown purifier {arg!r} ({', '.join(PURIFIERS)})")
    else:
        try:
            parse(part)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


def check_condition(pattern: str) -> None:
    """A ``where: condition`` value (glob allowed) that can match a condition a probe stores."""
    if pattern.strip() != pattern or not pattern:
        raise ValueError(f"condition {pattern!r}: empty or padded with spaces")
    if pattern == "*":
        return
    for part in pattern.split("+"):
        _check_part(part, pattern)


def check_attribute(pattern: str) -> None:
    """A ``where: attribute`` value that can name an attribute column ("" = metrics about no attribute)."""
    if pattern.strip() != pattern:
        raise ValueError(f"attribute {pattern!r}: padded with spaces")
    if pattern in RESERVED or pattern.startswith(("pt_", "_")):
        raise ValueError(f"attribute {pattern!r}: a manifest column that is never an attribute")


def check_order(warn_if: str | None, fail_if: str | None) -> None:
    """``fail`` is judged first, so a warn threshold that fail always covers could never fire."""
    if not warn_if or not fail_if:
        return
    (wo, wn), (fo, fn) = COMPARATOR.match(warn_if).groups(), COMPARATOR.match(fail_if).groups()
    w, f = float(wn), float(fn)
    up, down = {">", ">="}, {"<", "<="}
    if (wo in up and fo in down) or (wo in down and fo in up):
        raise ValueError(f"warn_if {warn_if!r} and fail_if {fail_if!r} point in opposite directions")
    if wo in up and fo in up and (f < w or (f == w and (fo == ">=" or wo == fo))):
        raise ValueError(f"fail_if {fail_if!r} is reached before warn_if {warn_if!r}, so the rule can never warn; "
                         "the fail threshold must be the stricter one")
    if wo in down and fo in down and (f > w or (f == w and (fo == "<=" or wo == fo))):
        raise ValueError(f"fail_if {fail_if!r} is reached before warn_if {warn_if!r}, so the rule can never warn; "
                         "the fail threshold must be the stricter one")
