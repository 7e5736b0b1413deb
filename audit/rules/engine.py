"""Rule packs: load and validate YAML, evaluate them on stored metric records.

A rule names a stable location (probe, metric, ``where`` filters on condition, attribute,
group and setting, with ``*`` globs and lists; a one-part condition pattern also matches combined
conditions through their parts, and rates in setting patterns are written as results store them),
how to combine the matching rows (``aggregate``), which end of the interval to judge (``use``), and
comparators. A rule whose probe did not run, or that matches no metric row, is ``not_applicable`` -
never ``pass``; so is one that would pass while a matching row has no interval end to judge or
names an operating point the data cannot back, and one judged at one end of the interval whose other
end (aggregated the same way) still reaches the limit, or judged on the value whose interval end toward the limit
reaches it: a pass must exclude a fail.

Two margins are judged on purpose: a row whose value is infinite (a disparity ratio where one group
has no errors and another has some) is judged at that value, the worst case, whatever end of the
interval the rule names; and a demographic differential that would pass is ``not_applicable`` when a
group has too few persons to tell a disparity at the rule's threshold apart from parity
(:func:`audit.metrics.demographic.resolves`), with the number of persons it would need.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

import audit
from audit.config import QUERY_PASS_BUDGET
from audit.errors import RuleError, first_error
from audit.metrics import demographic as demo
from audit.metrics.catalogue import known
from audit.metrics.settings import is_unsupported, operating_point, rate_of, supported_form
from audit.resources import rules_dir
from audit.rules import reach
from audit.yamlio import load_yaml, parse_yaml, read_bytes

COMPARATOR = re.compile(r"^\s*(<=|>=|<|>|==|!=)\s*(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
WHERE_KEYS = ("condition", "attribute", "group", "setting")
PACK_DIR = rules_dir()


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Z0-9][A-Z0-9_.-]*$")
    title: str
    probe: str
    metric: str
    where: dict[str, str | list[str]] = Field(default_factory=dict)
    exclude: dict[str, str | list[str]] = Field(default_factory=dict)
    """Results matching any of these (same keys and globs as ``where``) are left out, e.g. a cloak's purified
    conditions from a best-cloak rule: the attacker, not the person, chooses the purifier."""
    aggregate: Literal["max", "min", "mean"] = "max"
    warn_if: str | None = None
    fail_if: str | None = None
    use: Literal["value", "ci_low", "ci_high"] = "value"
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    references: list[str] = Field(default_factory=list)
    rationale: str = ""

    @field_validator("probe")
    @classmethod
    def _probe(cls, v: str) -> str:
        reach.check_probe(v)
        return v

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str, info: ValidationInfo) -> str:
        if not known(v):
            raise ValueError(f"unknown metric {v!r} (see 'faceaudit rules metrics' for the list)")
        if "probe" in info.data:  # fields validate in order; a bad probe was already reported
            reach.check_probe_metric(info.data["probe"], v)
        return v

    @field_validator("warn_if", "fail_if")
    @classmethod
    def _comparator(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not COMPARATOR.match(str(v)):
            raise ValueError(f"bad comparator {v!r}; write e.g. '> 0.05' (one of < <= > >= == != and a number)")
        if info.field_name == "fail_if" and info.data.get("warn_if"):
            reach.check_order(info.data["warn_if"], v)
        return v

    @field_validator("where", "exclude")
    @classmethod
    def _where(cls, v: dict, info: ValidationInfo) -> dict:
        bad = [k for k in v if k not in WHERE_KEYS]
        if bad:
            raise ValueError(f"unknown key(s) {bad}; allowed: {list(WHERE_KEYS)}")
        checks = {"condition": reach.check_condition, "attribute": reach.check_attribute}
        for key, pattern in v.items():
            values = pattern if isinstance(pattern, list) else [pattern]
            if not values:
                raise ValueError(f"{key}: an empty list matches nothing")
            for value in values:
                checks.get(key, lambda _: None)(value)
        if "setting" in v:  # 'fmr=1e-3' is stored as 'fmr=0.001': a rule spelling it otherwise would never match
            pattern = v["setting"]
            v = {**v, "setting": [_canonical_setting(p) for p in pattern] if isinstance(pattern, list)
                 else _canonical_setting(pattern)}
            if "metric" in info.data:  # a bad metric was already reported
                for p in v["setting"] if isinstance(v["setting"], list) else [v["setting"]]:
                    reach.check_setting(info.data["metric"], p)
        return v


class Pack(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pack: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
    """Letters, digits, '_', '.', '-': findings and signed statements name a rule as ``pack/RULE`` in lists joined
    with ', ', so a pack id holding either would be read back as other rules."""
    version: str = "1"
    title: str = ""
    description: str = ""
    rules: list[Rule]
    source: str = ""
    sha256: str = ""
    """SHA-256 of the pack file's bytes: findings record it, so a finding names the exact pack text that judged it."""


def holds(expr: str | None, x: float) -> bool:
    if expr is None:
        return False
    op, num = COMPARATOR.match(expr).groups()
    y = float(num)
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y, "==": x == y, "!=": x != y}[op]


def load_pack(ref: str | Path) -> Pack:
    """Load a pack by file path or by id (a YAML under rules/); errors name file, rule and field."""
    path = Path(ref)
    if not path.suffix and not path.exists():  # an id; a file the user names is read whatever its suffix
        path = PACK_DIR / f"{ref}.yaml"
        if not path.is_file():  # named as the user wrote it, not by the folder the shipped packs lie in
            raise RuleError(f"rule pack {str(ref)!r} not found: no such file, nor a shipped pack id (shipped: "
                            f"{', '.join(p.stem for p in available_packs())})")
    if path.is_dir():
        raise RuleError(f"{path}: is a folder; give a rule pack YAML file or a pack id")
    if not path.is_file():
        raise RuleError(f"{path}: rule pack not found (packs: {', '.join(p.stem for p in available_packs())})")
    raw = read_bytes(path, RuleError)
    data = parse_yaml(raw, path, RuleError, utf8_hint="; save the pack as UTF-8")
    if not isinstance(data, dict):
        raise RuleError(f"{path}: a rule pack is a mapping with 'pack' and 'rules'")
    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        raise RuleError(f"{path}: field 'rules' must be a non-empty list")
    for i, r in enumerate(rules):
        rid = r.get("id", f"#{i + 1}") if isinstance(r, dict) else f"#{i + 1}"
        try:
            rule = Rule.model_validate(r)
        except ValidationError as exc:
            field, msg = first_error(exc)
            raise RuleError(f"{path}: rule {rid}: field '{field or '(rule)'}': {msg}") from None
        if rule.warn_if is None and rule.fail_if is None:
            raise RuleError(f"{path}: rule {rid}: field 'warn_if'/'fail_if': give at least one comparator")
    ids = [r["id"] for r in rules]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise RuleError(f"{path}: rule {sorted(dup)[0]}: field 'id': duplicated in the pack")
    try:
        pack = Pack.model_validate({**data, "source": str(path), "sha256": hashlib.sha256(raw).hexdigest()})
    except ValidationError as exc:
        field, msg = first_error(exc)
        raise RuleError(f"{path}: field '{field}': {msg}") from None
    shipped = _shipped_hashes().get(pack.pack)
    if shipped is not None and shipped != pack.sha256:
        # Findings are stored per (run, pack id): a user file under a shipped id would replace the shipped
        # pack's findings with its own judgement while reports still show the shipped pack's name.
        raise RuleError(f"{path}: field 'pack': {pack.pack!r} is the id of a shipped pack but the file differs from "
                        f"it; give your pack its own id (e.g. 'pack: my-{pack.pack}')")
    return pack


def shipped_hash(pack_id: str) -> str | None:
    """SHA-256 of the shipped pack file with id ``pack_id``; None for a pack faceaudit does not ship."""
    return _shipped_hashes().get(pack_id)


@lru_cache(maxsize=1)
def _shipped_hashes() -> dict[str, str]:
    """Pack id -> SHA-256 of the shipped pack file with that id."""
    out = {}
    for path in available_packs():
        raw = path.read_bytes()
        data = load_yaml(raw.decode("utf-8"))
        if isinstance(data, dict) and isinstance(data.get("pack"), str):
            out[data["pack"]] = hashlib.sha256(raw).hexdigest()
    return out


def load_packs(refs: list[str | Path] | None = None) -> list[Pack]:
    """Load packs (default: every shipped pack); two packs with one id are refused, since findings are
    stored per (run, pack id) and the second would silently replace the first's."""
    packs = [load_pack(r) for r in (refs or [p.stem for p in available_packs()])]
    seen: dict[str, Pack] = {}
    for pack in packs:
        if pack.pack in seen and seen[pack.pack].sha256 != pack.sha256:
            raise RuleError(f"{pack.source}: field 'pack': id {pack.pack!r} is also the id of {seen[pack.pack].source}; "
                            "give each pack its own id")
        seen[pack.pack] = pack
    return list({p.pack: p for p in packs}.values())


def available_packs() -> list[Path]:
    return sorted(PACK_DIR.glob("*.yaml"))


def _canonical_setting(pattern: str) -> str:
    """A ``where: setting`` pattern with every rate written as results store it (``fmr=1e-3`` -> ``fmr=0.001``,
    :func:`audit.metrics.settings.operating_point`); globs and other words are left as they are."""
    parts = []
    for part in pattern.split(";"):
        key, sep, value = part.partition("=")
        if sep and not reach.GLOB.search(value):
            try:
                part = f"{key}={float(value):g}"
            except ValueError:
                pass
        parts.append(part)
    return ";".join(parts)


def _aggregate(rule: Rule, values: pd.Series) -> float:
    """``values`` aggregated as ``rule`` aggregates its judged numbers."""
    return float(values.mean() if rule.aggregate == "mean" else values.max() if rule.aggregate == "max"
                 else values.min())


def _match(series: pd.Series, pattern: str | list[str], key: str = "") -> pd.Series:
    """Rows whose ``key`` matches the pattern (a glob, or a list of them). A condition pattern of one part also
    matches a combined condition through any of its parts but ``clean`` (``mask:*`` matches ``sunglasses+mask:n95``
    as it matches ``mask:n95+sunglasses``: a masked face is masked whatever else it wears), while ``clean`` stays
    the unaltered face alone."""
    pats = pattern if isinstance(pattern, list) else [pattern]

    def hit(v: str) -> bool:
        if any(fnmatch.fnmatchcase(v, p) for p in pats):
            return True
        if key != "condition" or "+" not in v:
            return False
        parts = [part.strip() for part in v.split("+") if part.strip() != "clean"]
        return any(fnmatch.fnmatchcase(part, p) for p in pats if "+" not in p and p != "clean" for part in parts)

    return series.astype(str).map(hit).astype(bool)


@dataclass(frozen=True)
class Finding:
    rule: Rule
    status: str
    observed: float | None
    location: dict
    message: str


def selected(rule: Rule, metrics: pd.DataFrame) -> pd.DataFrame:
    """The results ``rule`` reads: its probe's and metric's that match every ``where`` and no ``exclude`` pattern."""
    rows = metrics[(metrics["probe"] == rule.probe) & (metrics["metric"] == rule.metric)]
    for key, pattern in rule.where.items():
        rows = rows[_match(rows[key], pattern, key)]
    for key, pattern in rule.exclude.items():
        rows = rows[~_match(rows[key], pattern, key)]
    return rows


def evaluate_rule(rule: Rule, metrics: pd.DataFrame, probes_run: set[str]) -> Finding:
    """The rule's finding on ``metrics``. A rule not judged although it has results (too few persons, queries or
    comparisons behind them, a result without the interval end it judges or without any number, a wide interval)
    records in ``location["undecided"]`` the verdict its data do not exclude (``fail`` or ``warn``): the limit its
    measured value reaches, or the one the interval's end toward the limit reaches (the fail limit, or the warn limit
    without one, as a pass must exclude it), or, for a result without a number (an attack not tried), that same
    limit; so that a gate and a signed statement never read it as a pass (:mod:`audit.evidence.gate`)."""
    f = _evaluate(rule, metrics, probes_run)
    if f.status != "not_applicable" or "undecided" in f.location:
        return f
    rows = selected(rule, metrics) if rule.probe in probes_run else metrics.iloc[:0]
    values = rows["value"].astype(float)
    blind = bool(values.isna().any())  # a result without any number: nothing about it is excluded
    rows, values = rows[values.notna()], values.dropna()
    if rows.empty and not blind:
        return f
    level, said, loc = None, "", {}
    if len(rows):
        value = _aggregate(rule, values)
        level = "fail" if holds(rule.fail_if, value) else "warn" if holds(rule.warn_if, value) else None
        said = f"The {rule.aggregate} measured value, {value:.4g}, reaches the {level} limit itself."
    # The interval end toward the limit too, as a pass must keep it short of the limit: the same interval on fewer
    # persons (or at an operating point the data cannot back) must never read milder than on more, where it is "too
    # uncertain to judge" (a ratio of 1.5 [0.6, 9.0] against "fail if > 5" was undecided on 2,000 persons a group and
    # plain not judged on 40, so the strict gate opened and a statement said PASSED; a review of the report).
    toward = _end_toward_limit(rule, rows) if len(rows) else None
    if level != "fail" and toward is not None:
        limit, at, end, other = toward
        if other is None:
            level, said = at, f"A result has no {end} end of the 95% CI: a {at} cannot be excluded."
        elif holds(limit, other):
            level, loc = at, {"other_end": other}
            said = (f"The {rule.aggregate} {end} end of the 95% CI, {other:.4g}, reaches the {at} limit ({at} if "
                    f"{limit}): a {at} cannot be excluded.")
    _, at = _exclusion_limit(rule)
    if blind and level != "fail" and (level is None or at == "fail"):
        # e.g. a white-box attack not tried (no torch backend, or one that failed parity): the strongest attack of a
        # pooled rule is unknown, so the strict gate must not open on the others (a review of the change)
        level, said = at, f"A result without a number to judge cannot exclude a {at}."
    if level is None:
        return f
    return replace(f, location={**f.location, **loc, "undecided": level}, message=f"{f.message} {said}")


def _evaluate(rule: Rule, metrics: pd.DataFrame, probes_run: set[str]) -> Finding:
    if rule.probe not in probes_run:
        return Finding(rule, "not_applicable", None, {}, f"The {rule.probe} probe did not run, so this rule cannot "
                       "be judged.")
    rows = selected(rule, metrics)
    at_end = rows[rule.use].where(~np.isinf(rows["value"].astype(float)), rows["value"])  # infinite: the worst case
    # A result with no number to judge (every resample undefined; or no value at all, e.g. a disparity across groups
    # one of which has no comparisons of its own) can never make a rule pass.
    blind = rows[at_end.isna()]
    matched, rows, at_end = rows, rows[at_end.notna()], at_end[at_end.notna()]
    judged = "value" if rule.use == "value" else ("lower" if rule.use == "ci_low" else "upper") + " end of the 95% CI"
    if rows.empty:
        if len(blind):
            return Finding(rule, "not_applicable", None, {"where": rule.where, "rows": 0, **_blind(blind)},
                           f"{_blind_sentence(blind, rule, judged)} Not judged as passing.")
        measured = _measured_elsewhere(rule, metrics)
        looser = _looser_verdict(rule, metrics, measured, probes_run) if measured else None
        if looser is not None:  # a failure at a looser target is one at the rule's (the rates are monotone)
            return looser
        if measured:  # an error-rate target the probe did not measure: the data cannot back it (rule of 30)
            return Finding(rule, "not_applicable", None, {"where": rule.where, "measured_at": measured},
                           f"Too few comparisons to judge: no {rule.metric} result at "
                           f"{_words(rule.where['setting'])}; the run measured it at {', '.join(measured)} only (an "
                           "error-rate target resting on fewer than 30 expected errors is not measured; the run's "
                           "notes say how many more comparisons it needs). Not judged as passing.")
        return Finding(rule, "not_applicable", None, {"where": rule.where},
                       f"No {rule.metric} result matched {rule.where or 'the rule'} (e.g. the attribute is not in the "
                       "dataset or the condition was not run).")
    values = at_end.to_numpy(float)
    if rule.aggregate == "mean":
        observed, pick = float(values.mean()), None
    else:
        i = int(np.argmax(values) if rule.aggregate == "max" else np.argmin(values))
        observed, pick = float(values[i]), rows.iloc[i]
    status = "fail" if holds(rule.fail_if, observed) else "warn" if holds(rule.warn_if, observed) else "pass"
    loc = {"rows": int(len(rows))}
    if pick is not None and status != "pass":
        loc["breaches"] = _breaches(rule, rows, at_end)
    where = ""
    if pick is not None:
        loc.update({k: str(pick[k]) for k in WHERE_KEYS})
        loc.update({"value": float(pick["value"]), "ci_low": _f(pick["ci_low"]), "ci_high": _f(pick["ci_high"])})
        parts = [f"{k} {pick[k]}" for k in ("attribute", "condition", "group", "setting") if pick[k] not in ("", "all")]
        where = f" ({', '.join(parts)})" if parts else ""
    limits = "; ".join(x for x in (f"warn if {rule.warn_if}" if rule.warn_if else "",
                                   f"fail if {rule.fail_if}" if rule.fail_if else "") if x)
    said = judged  # the judged number in words: an infinite one says why (the value itself, or only an interval end)
    values_inf = np.isinf(rows["value"].astype(float)).any() if pick is None else np.isinf(float(pick["value"]))
    if np.isinf(observed) and values_inf:
        said = "value (infinite: one group has no errors while another has some, judged as the worst case)"
    elif np.isinf(observed):
        said += " (unbounded: on some resamples one group has no errors while another has some)"
    msg = f"{rule.aggregate} {rule.metric} {said} = {observed:.4g}{where} over {len(rows)} result(s); {limits}."
    budget = _query_budget(rule, rows, metrics)
    if budget is not None:  # a budget-bound attack's result is stated with its budget, whatever the status
        spent, enough = budget
        msg += (f" The query-only attacker spent {'an unknown number of' if spent is None else f'{spent:.0f}'} "
                "queries per victim: a result on it holds for that many queries, not for a patient attacker.")
    if status == "pass" and rule.metric in demo.DIFFERENTIALS:
        short = _too_few_persons(rule, matched, metrics)
        if short:
            loc["needs_persons"] = short[0]
            return Finding(rule, "not_applicable", observed, loc, short[1] + f" (The {rule.metric} itself: {msg})")
    # An operating point the data cannot back may warn or fail, never pass: the judged row's, or any row the rule pools
    # (whatever the aggregate: a max that picked a supported row still stands on the unsupported ones being lower).
    unsupported = [x for x in rows["setting"].astype(str) if is_unsupported(x)]
    if status == "pass" and unsupported:
        if rule.probe == "membership":
            need = nonmembers_needed(rule.probe, unsupported[0], metrics)
            loc["needs_persons"] = need or 0
            return Finding(rule, "not_applicable", observed, loc,
                           f"Too few non-member persons to judge: the false-positive target rests on fewer than 30 "
                           f"expected false positives; it needs {need or 'more'}{' more' if need else ''} non-member "
                           f"persons. Not judged as passing. ({msg}){_membership_supported(metrics)}")
        return Finding(rule, "not_applicable", observed, loc,
                       f"Too few comparisons to judge at {supported_form(unsupported[0])}: the error-rate target rests "
                       "on fewer than 30 expected errors (the run's notes say how many more comparisons it needs). "
                       f"Not judged as passing. ({msg})")
    if status == "pass" and budget is not None and not budget[1]:
        loc["queries_per_victim"] = budget[0]
        return Finding(rule, "not_applicable", observed, loc,
                       f"Too few queries to judge: a query-inversion result passes only on at least "
                       f"{QUERY_PASS_BUDGET} queries per victim (the smallest preset's budget); on fewer it shows "
                       f"only that the attack did not succeed within them. Not judged as passing. ({msg})")
    if status == "pass" and len(blind):
        loc.update(_blind(blind))
        return Finding(rule, "not_applicable", observed, loc,
                       f"{_blind_sentence(blind, rule, judged)} Not judged as passing. (The others: {msg})")
    toward = _end_toward_limit(rule, rows) if status == "pass" else None
    if toward is not None:
        # A pass must exclude the limit: the other end of the interval (for a rule judged on the value, the end
        # toward the limit), aggregated as the rule aggregates (the max of the upper ends bounds the max of the true
        # values), must not reach it either, or the data cannot tell a pass from a fail (a leakage interval of
        # [0, 0.3] against "fail if > 0.15" is no evidence of safety, nor a false-match ratio of 1.8 [0.6, 9.0]
        # against "fail if > 5"). Nor may the measured value itself (aggregated alike) sit beyond the warn limit: an
        # inversion rate of 0.07 [0.009, 0.10] against "warn if > 0.01" is seven times the limit, not a pass.
        limit, level, end, other = toward
        if other is None:  # an interval with one end only: no evidence on the side a pass must exclude
            loc["undecided"] = level
            return Finding(rule, "not_applicable", observed, loc,
                           f"No interval to judge: the {judged} passes, but a result has no {end} end, so the data "
                           f"cannot show that it stays within the {level} limit. Not judged as passing. ({msg})")
        value = _aggregate(rule, rows["value"].astype(float))
        if holds(limit, other):
            loc.update(other_end=other, undecided=level)
            return Finding(rule, "not_applicable", observed, loc,
                           f"Too uncertain to judge: the {judged} passes, but the {rule.aggregate} {end} end is "
                           f"{other:.4g}, which reaches the {level} limit ({level} if {limit}); the data cannot tell "
                           f"a pass from a {'fail' if level == 'fail' else 'warning'}, and more persons would narrow "
                           f"the interval. Not judged as passing. ({msg})")
        if rule.fail_if and rule.warn_if and holds(rule.warn_if, value):
            loc.update(other_end=other, undecided="warn")
            return Finding(rule, "not_applicable", observed, loc,
                           f"Too uncertain to judge: the {judged} passes, but the {rule.aggregate} measured value is "
                           f"{value:.4g}, beyond the warn limit (warn if {rule.warn_if}); the data cannot tell a pass "
                           f"from a warning, and more persons would narrow the interval. Not judged as passing. "
                           f"({msg})")
    if status == "warn" and rule.fail_if:
        # A warning judged at one end of the interval may sit far short of what was measured: an inversion rate of
        # 0.50 [0.02, 0.84] against "fail if > 0.10" is five times the fail limit. The warning stands (it is what the
        # data clearly show), but that a fail cannot be excluded is said, and the gate names it (a review of the
        # rules: a signed report showed a plain "warn" and the gate at --fail-on fail opened on it).
        side = _toward_limit(rule) or rule.use
        other, value = (_aggregate(rule, rows[c].astype(float)) for c in (side, "value"))
        if holds(rule.fail_if, value):
            loc["fail_not_excluded"] = value
            msg += (f" The {rule.aggregate} measured value, {value:.4g}, reaches the fail limit itself: a fail cannot "
                    "be excluded.")
        elif side != rule.use and holds(rule.fail_if, other):
            loc["fail_not_excluded"] = other
            msg += (f" The {rule.aggregate} {'upper' if side == 'ci_high' else 'lower'} end of the 95% CI, "
                    f"{other:.4g}, reaches the fail limit: a fail cannot be excluded.")
    if len(blind):  # a warning or failure stands, but the results it could not judge are named beside it
        loc.update(_blind(blind))
        msg += " Not judged: " + _blind_sentence(blind, rule, judged)
    if status == "pass" and (absent := _absent_attributes(rule, rows)):
        # "[sex, skin_tone, race]" pools every one that exists: a pass on sex alone says what it does not cover
        loc["no_result_for"] = absent
        msg += (f" No result for {', '.join(absent)}: this pass does not cover "
                f"{'it' if len(absent) == 1 else 'them'}.")
    return Finding(rule, status, observed, loc, msg)


ALTERNATIVES = ({"skin_tone", "race"},)
"""Attributes a rule names as alternatives: one of them having results is enough (a dataset labels one or the other)."""


def _absent_attributes(rule: Rule, rows: pd.DataFrame) -> list[str]:
    """The attributes a rule's ``where`` names literally (no glob) that none of its judged rows is about, an
    alternative (:data:`ALTERNATIVES`) counting for its group."""
    named = rule.where.get("attribute")
    named = [named] if isinstance(named, str) else list(named or [])
    if len(named) < 2 or any(ch in a for a in named for ch in "*?["):
        return []
    have = set(rows["attribute"].astype(str))
    out = []
    for a in named:
        group = next((g for g in ALTERNATIVES if a in g), {a})
        if not group & have and a not in out:
            out.append(a)
    return out


def _toward_limit(rule: Rule) -> str | None:
    """The interval end a pass must keep short of the limit: for a rule judged at one end, the other end; for one
    judged on the measured value, the end on the limit's side (the upper end of a "> x" rule); None for a rule whose
    limits set no side (``==``, ``!=``)."""
    if rule.use != "value":
        return "ci_high" if rule.use == "ci_low" else "ci_low"
    limit = _pass_limit(rule)
    return None if limit is None else {">": "ci_high", ">=": "ci_high", "<": "ci_low", "<=": "ci_low"}[
        COMPARATOR.match(limit[0]).group(1)]


def _exclusion_limit(rule: Rule) -> tuple[str | None, str]:
    """The limit a pass must exclude, with its level: :func:`_pass_limit`, else the fail limit, or the warn limit when
    the rule has none."""
    return _pass_limit(rule) or ((rule.fail_if, "fail") if rule.fail_if else (rule.warn_if, "warn"))


def _end_toward_limit(rule: Rule, rows: pd.DataFrame) -> tuple[str | None, str, str, float | None] | None:
    """What a pass must keep short of its limit on ``rows``: (the limit, its level, which end, "upper" or "lower",
    and that end aggregated as the rule aggregates, None when a result has no such end); None for a rule whose limits
    set no side (:func:`_toward_limit`). One reading for a pass and for a rule not judged, which records what it
    cannot exclude (:func:`evaluate_rule`)."""
    side = _toward_limit(rule)
    if side is None:
        return None
    limit, level = _exclusion_limit(rule)
    ends = rows[side].astype(float)
    return limit, level, "upper" if side == "ci_high" else "lower", None if ends.isna().any() else _aggregate(rule, ends)


def _pass_limit(rule: Rule) -> tuple[str, str] | None:
    """The limit a pass must keep the interval short of, with its level: the fail limit, or the warn limit when the
    rule has none (or its fail limit sets no side, ``== x``); None when neither sets a side."""
    for expr, level in ((rule.fail_if, "fail"), (rule.warn_if, "warn")):
        if expr and COMPARATOR.match(expr).group(1) in ("<", "<=", ">", ">="):
            return expr, level
    return None


def _query_budget(rule: Rule, rows: pd.DataFrame, metrics: pd.DataFrame) -> tuple[float | None, bool] | None:
    """For a rule whose judged rows include the query-only inversion attacker's (``query;...``): the queries per victim
    it spent (``queries_per_victim``, setting ``query``; None when not stored) and whether that reaches what
    :data:`audit.config.QUERY_PASS_BUDGET` spends. None for a rule reading no such row."""
    if rule.probe != "inversion" or not rows["setting"].astype(str).str.startswith("query;").any():
        return None
    q = metrics[(metrics["probe"] == "inversion") & (metrics["metric"] == "queries_per_victim")
                & (metrics["setting"] == "query")]["value"].astype(float).dropna()
    if q.empty:
        return None, False
    spent = float(q.min())
    return spent, spent >= QUERY_PASS_BUDGET


def _membership_supported(metrics: pd.DataFrame) -> str:
    """What the membership probe measured where its non-members do back it (the strongest attack's AUC, and its TPR
    at each supported false-positive target beside the rate its thresholds reached), for a membership rule that
    cannot judge its own target: the reader learns what the run shows though this rule judges none of it."""
    m = metrics[metrics["probe"] == "membership"]
    parts = []
    auc = m[(m["metric"] == "membership_auc") & (m["setting"] == "strongest")]
    if len(auc) and pd.notna(auc.iloc[0]["ci_low"]):
        a = auc.iloc[0]
        told = "above" if a["ci_low"] > 0.5 else "not clearly above"
        parts.append(f"the strongest attack's AUC is {a['value']:.3f} (95% CI {a['ci_low']:.3f} to {a['ci_high']:.3f}; "
                     f"{told} chance, 0.5)")
    tpr = m[(m["metric"] == "membership_tpr_at_fpr") & m["setting"].astype(str).str.startswith("strongest;")]
    for _, r in tpr[[not is_unsupported(x) for x in tpr["setting"].astype(str)]].iterrows():
        reached = m[(m["metric"] == "membership_fpr") & (m["setting"] == r["setting"])]
        beside = f", with {reached.iloc[0]['value']:.1%} of non-members accused" if len(reached) else ""
        parts.append(f"its true-positive rate at a false-positive target of {rate_of(r['setting'], 'fpr'):g} is "
                     f"{r['value']:.3f} (95% CI {r['ci_low']:.3f} to {r['ci_high']:.3f}{beside})")
    if not parts:
        return ""
    return (" What the non-members do back, which this rule does not judge: " + "; ".join(parts)
            + " (the baseline pack's MEMB-AUC judges the AUC, where it is applied).")


def _words(pattern: str | list[str]) -> str:
    """A ``where`` pattern as a reader would write it (a list as 'a or b', not a Python list)."""
    return pattern if isinstance(pattern, str) else " or ".join(pattern)


def _measured_elsewhere(rule: Rule, metrics: pd.DataFrame) -> list[str]:
    """The settings at which the run holds the rule's results when only the error-rate target of its ``setting``
    (``fmr=``, ``fpr=``) is missing: the probe measured everything else the rule asks for (e.g. identity measures no
    FMR target its impostor comparisons cannot back). Empty when something else is missing too."""
    pattern = rule.where.get("setting")
    pats = [pattern] if isinstance(pattern, str) else list(pattern or [])
    if not pats or not any(re.search(r"\bf[mp]r=", p) for p in pats):
        return []
    rows = metrics[(metrics["probe"] == rule.probe) & (metrics["metric"] == rule.metric)]
    for key, pat in rule.where.items():
        if key != "setting":
            rows = rows[_match(rows[key], pat, key)]
    return sorted({str(x) for x in rows["setting"]})


MONOTONE = {"tar_at_fmr": "<", "fnmr": ">"}
"""Identity rates whose verdict at a looser false-match target bounds the one at a stricter target: a stricter
threshold accepts fewer genuine comparisons, so TAR can only fall and FNMR only rise (rules judging them from the
side that direction worsens)."""


def _looser_verdict(rule: Rule, metrics: pd.DataFrame, measured: list[str], probes_run: set[str]) -> Finding | None:
    """A warning or failure of ``rule`` shown at a looser error-rate target than its own, which the run could not
    measure (too few comparisons): TAR at FMR 1e-2 of 0.40 [0.30, 0.50] fails a rule on TAR at 1e-3 as surely; and a
    verdict the looser results cannot exclude (``undecided``), which the stricter target cannot exclude either.
    None when the rule is not of that kind or the looser results would pass (no pass is ever drawn from them)."""
    want = rate_of(str(rule.where.get("setting", "")), "fmr") if isinstance(rule.where.get("setting"), str) else None
    op = MONOTONE.get(rule.metric)
    if want is None or op is None or not any(x.startswith(op) for x in (rule.warn_if or "", rule.fail_if or "")):
        return None
    looser = sorted({m for m in measured if (rate_of(m, "fmr") or 0) > want},
                    key=lambda m: rate_of(m, "fmr"))
    if not looser:
        return None
    at = looser[0]  # the tightest of the looser targets measured: the closest bound
    f = evaluate_rule(rule.model_copy(update={"where": {**rule.where, "setting": at}}), metrics, probes_run)
    worse = "lower" if op == "<" else "higher"
    if f.status == "not_applicable" and "undecided" in f.location:
        # a verdict the looser target's data cannot exclude holds at the stricter one as well: on fewer persons
        # (no 1e-3 row) the same interval was plain "too few comparisons", so the strict gate opened and a signed
        # statement said PASSED where more persons said undecided (a review of the verdicts)
        return Finding(rule, "not_applicable", None, {**f.location, "bound_from": at},
                       f"Too few comparisons for {rule.where['setting']}; measured at {at}, where a "
                       f"{f.location['undecided']} cannot be excluded: {rule.metric} at the stricter target can only "
                       f"be {worse}, so it cannot be excluded there either. Not judged as passing. ({f.message})")
    if f.status not in ("warn", "fail"):
        return None
    return Finding(rule, f.status, f.observed, {**f.location, "bound_from": at},
                   f"Measured at {at} only (too few comparisons for {rule.where['setting']}): {rule.metric} at the "
                   f"stricter target can only be {worse}, so this {f.status} holds there too. ({f.message})")


MAX_BREACHES = 20


def _breaches(rule: Rule, rows: pd.DataFrame, at_end: pd.Series) -> list[dict]:
    """Every matching row that reaches a limit on its own (failing first, then by judged number, at most
    :data:`MAX_BREACHES`): a rule aggregated by max or min names only its extreme row, and a report must not read
    the other attributes or conditions it covers as within limits when they are not."""
    out = []
    for (_, row), v in zip(rows.iterrows(), at_end.to_numpy(float)):
        level = "fail" if holds(rule.fail_if, v) else "warn" if holds(rule.warn_if, v) else None
        if level:
            out.append({"level": level, "judged": float(v), **{k: str(row[k]) for k in WHERE_KEYS}})
    reverse = rule.aggregate == "max"
    out.sort(key=lambda b: (b["level"] != "fail", -b["judged"] if reverse else b["judged"]))
    return out[:MAX_BREACHES]


def _blind(rows: pd.DataFrame) -> dict:
    """Where the first result without the judged interval end is, for a finding's location."""
    first = rows.iloc[0]
    return {"unjudged_rows": int(len(rows)), "unjudged": {k: str(first[k]) for k in WHERE_KEYS}}


def _blind_sentence(rows: pd.DataFrame, rule: Rule, judged: str) -> str:
    first = rows.iloc[0]
    parts = [f"{k} {first[k]}" for k in ("attribute", "condition", "group", "setting") if first[k] not in ("", "all")]
    at = ', '.join(parts) or 'the run'
    if pd.isna(first["value"]):
        return (f"{len(rows)} {rule.metric} result(s) have no value to judge (e.g. {at}: undefined on these data, "
                "such as a disparity whose groups lack comparisons of their own, or an attribute labelled for too few "
                "persons).")
    return (f"{len(rows)} {rule.metric} result(s) have a value but no {judged} to judge "
            f"(e.g. {at}: value {float(first['value']):.4g}; its resamples gave no interval).")


def any_judged(findings: pd.DataFrame) -> bool:
    """Whether some finding is a verdict (pass, warn or fail), not only rules that could not be judged."""
    return bool((findings["status"] != "not_applicable").any())


def nonmembers_needed(probe: str, setting: str, metrics: pd.DataFrame) -> int | None:
    """The stored count of further non-member persons the false-positive target of ``setting`` (a
    ``membership_tpr_at_fpr`` setting) needs; None when none is stored for it."""
    fpr = rate_of(setting, "fpr")
    if fpr is None:
        return None
    row = metrics[(metrics["probe"] == probe) & (metrics["metric"] == "membership_nonmembers_needed") &
                  (metrics["setting"] == operating_point("fpr", fpr))]
    return int(row["value"].iloc[0]) if len(row) else None


def _too_few_persons(rule: Rule, rows: pd.DataFrame, metrics: pd.DataFrame) -> tuple[int, str] | None:
    """Whether some group behind the differential rows that would pass has too few persons to tell a disparity at
    the rule's pass threshold apart from parity: ``(more persons needed, sentence)``, or None. Rows from runs made
    before group person counts were stored (no ``group_persons`` rows) are not checked."""
    expr = rule.warn_if or rule.fail_if
    op, num = COMPARATOR.match(expr).groups()
    threshold = float(num)
    if (rule.metric == "fdr") != (op in ("<", "<=")):
        return None  # a comparator this check does not model (e.g. a ratio judged from below)
    short = []  # (more persons needed, or None when no group size would do; group, its persons, attribute, rate)
    for _, row in rows.iterrows():
        at = (metrics["probe"] == rule.probe) & (metrics["condition"] == row["condition"]) & (
            metrics["setting"] == row["setting"])
        groups = metrics[at & (metrics["metric"] == "group_persons") & (metrics["attribute"] == row["attribute"])]
        if groups.empty:
            continue
        persons = groups.set_index("group")["value"].astype(int)
        trials = metrics[at & (metrics["metric"] == "group_fmr_trials") & (metrics["attribute"] == row["attribute"])]
        trials = trials.set_index("group")["value"].astype(float)
        for rate_name in ([demo.RATIOS[rule.metric]] if rule.metric in demo.RATIOS else ["fmr", "fnmr"]):
            overall = metrics[at & (metrics["metric"] == rate_name) & (metrics["group"] == "all")]["value"]
            # FMR's units are the group's distinct person pairs: A's probe against B's gallery image and B's against
            # A's are the same two persons (counted apart before 0.6.0, a group passed on about 30% fewer persons);
            # fewer where its resamples show what its comparisons are worth (``group_fmr_trials``, since 0.11.0: pairs
            # share persons, so 150 persons a group were worth about half their 11,175 pairs on the sample world)
            pairs = persons * (persons - 1) // 2
            # a group whose rate is 0 (its resamples cannot say) is worth what the least of its peers' pairs are
            least = min(1.0, float((trials / pairs.reindex(trials.index)).min())) if len(trials) else 1.0
            units = (np.minimum(pairs, trials.reindex(pairs.index).fillna(pairs * least)) if rate_name == "fmr"
                     else persons).astype(float)
            total = persons.sum() * (persons.sum() - 1) // 2 if rate_name == "fmr" else persons.sum()
            # The overall rate, or its rule-of-three bound when no errors were seen at all (never above a rate seen:
            # a higher rate would ask for fewer persons).
            seen = float(overall.iloc[0]) if len(overall) and pd.notna(overall.iloc[0]) else 0.0
            rate = seen if seen > 0 else 3.0 / total
            need = demo.units_needed(rate, rule.metric, threshold)
            for g in units.index:
                if need and units[g] >= need:
                    continue
                # persons for the pairs needed, each pair worth what the group's pairs are worth now
                share = units[g] / pairs[g] if rate_name == "fmr" and pairs[g] and units[g] else 1.0
                need_persons = demo.pairs_to_persons(math.ceil(need / share)) if rate_name == "fmr" else need
                short.append((max(need_persons - int(persons[g]), 1) if need else None, g, int(persons[g]),
                              row["attribute"], rate_name, rate, seen > 0, units[g] if rate_name == "fmr" else None,
                              int(pairs[g])))
    if not short:
        return None
    more, group, have, attr, rate_name, rate, seen, trials_worth, pairs = max(
        short, key=lambda c: np.inf if c[0] is None else c[0])
    at = (f"the overall {rate_name.upper()} {rate:.3g}" if seen else
          f"{rate:.3g}, the rule-of-three bound on the {rate_name.upper()} (no errors seen among the groups' persons)")
    what = (f"a {rate_name.upper()} ratio above {threshold:g}" if rule.metric != "fdr"
            else f"an FDR below {threshold:g}") + f" from parity at {at}"
    needs = f"needs {more} more persons in such a group" if more is not None else "no group size would do"
    has = f"{have} persons" + (f" ({pairs:,} person pairs, whose false matches vary as {trials_worth:,.0f} "
                               "independent comparisons would)" if trials_worth is not None and trials_worth < pairs
                               else "")
    return more or 0, (f"Too few persons to judge: group {group!r} of {attr} has {has}; telling {what} "
                       f"(exact-binomial 95%) {needs}. Not judged as passing.")


def _f(x) -> float | None:
    return None if pd.isna(x) else float(x)


def evaluate(pack: Pack, run_id: str, metrics: pd.DataFrame, probes_run: set[str]) -> pd.DataFrame:
    """Findings for one pack on one run, as rows of the ``findings`` table."""
    now = datetime.now().replace(microsecond=0)
    rows = []
    for rule in pack.rules:
        f = evaluate_rule(rule, metrics, probes_run)
        location = {**f.location, "reads": attributes_read(rule, metrics)}
        rows.append({"run_id": run_id, "pack": pack.pack, "pack_version": str(pack.version), "rule_id": rule.id,
                     "title": rule.title, "status": f.status, "severity": rule.severity, "observed": f.observed,
                     "warn_if": rule.warn_if or "", "fail_if": rule.fail_if or "", "judged": rule.use,
                     "location": json.dumps(location), "refs": json.dumps(rule.references), "message": f.message,
                     "evaluated_at": now, "pack_hash": pack.sha256, "probe": rule.probe, "metric": rule.metric,
                     "judged_by": audit.__version__})
    df = pd.DataFrame(rows)
    df["observed"] = pd.to_numeric(df["observed"], errors="coerce")
    return df


def attributes_read(rule: Rule, metrics: pd.DataFrame) -> list[str]:
    """Attributes of the run ``rule`` reads: those of the results it reads (:func:`selected`: its probe and metric,
    every ``where`` key, not ``exclude``), so an attribute measured only where no rule looks (age leakage on a run
    without masks, read only by a masked rule) is unread. Each finding records them (``location["reads"]``), so that a
    report can say what no applied pack read without loading the packs again (a pack given as a file may not be at
    hand)."""
    rows = selected(rule, metrics)
    return sorted(set(rows.loc[rows["attribute"].astype(str) != "", "attribute"].astype(str)))


def measured_attributes(metrics: pd.DataFrame) -> set[str]:
    return set(metrics.loc[metrics["attribute"].astype(str) != "", "attribute"].astype(str))


def attributes_unread(packs: list[Pack], metrics: pd.DataFrame) -> list[str]:
    """Attributes the run measured that no rule of ``packs`` reads (:func:`attributes_read`). A column whose name
    no pack uses (``geschlecht`` for ``sex``) is measured and then judged by nothing, which a report must say."""
    return sorted(measured_attributes(metrics).difference(*(attributes_read(rule, metrics) for pack in packs
                                                            for rule in pack.rules)))


def attributes_judged() -> list[str]:
    """Attribute names the shipped packs' rules name in ``where: attribute`` (what heads and columns must be called)."""
    names: set[str] = set()
    for path in available_packs():
        for rule in load_pack(path).rules:
            value = rule.where.get("attribute")
            for v in ([value] if isinstance(value, str) else value or []):
                if v and not any(ch in v for ch in "*?["):
                    names.add(v)
    return sorted(names)
