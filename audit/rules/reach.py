"""Checks that a rule can ever fire: a rule that can never match a stored row would sit in every
report as ``not_applicable`` and nobody would notice that the policy it stands for is not checked.

Each function raises ``ValueError`` with a message naming the bad value (the engine adds file, rule
and field).
"""

from __future__ import annotations

import fnmatch
import re

from audit.conditions import MASK_TYPES, parse
from audit.conditions.cloaks import BEST as BEST_CLOAK
from audit.conditions.cloaks import METHODS as CLOAK_METHODS
from audit.conditions.purify import PURIFIERS
from audit.data.manifest import RESERVED, judged_name
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
        if method not in (*CLOAK_METHODS, BEST_CLOAK) or not re.fullmatch(r"\d+(\.\d+)?", eps):
            raise ValueError(f"condition {whole!r}: a cloak condition is cloak:<method>@<eps>, method one of "
                             f"{', '.join(CLOAK_METHODS)} or {BEST_CLOAK} (the best, chosen on other persons)")
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
    judged = judged_name(pattern)
    if judged != pattern:  # 'gender', 'Sex', 'skintone': datasets' columns so named are read as the judged name
        raise ValueError(f"attribute {pattern!r}: a column so named is read as {judged!r} (unless the dataset also has "
                         f"a {judged!r} column), so results are stored under {judged!r}; write {judged!r}")


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


# What a stored row's ``setting`` can read, per metric of the built-in probes: forms of ';'-separated parts, a
# ``{slot}`` standing for any of SLOTS[slot]. ``{fmr}`` / ``{fpr}`` are an operating point, which the probes write as
# audit.metrics.settings.operating_point does (the rate with ':g', and ';unsupported' when the data cannot back it);
# each probe measures its own rates. tests/rules/test_reach.py checks these against the probes' own constants and
# against the settings a real run stores.
IDENTITY_FMRS = (1e-2, 1e-3, 1e-4, 1e-5)  # audit.metrics.verification.FMR_TARGETS
INVERSION_FMRS = (1e-3, 1e-2)  # audit.probes.inversion.FMRS
CLOAK_FMRS = (1e-3,)  # the cloak probe's system threshold
MEMBERSHIP_FPRS = (1e-1, 1e-2, 1e-3)  # audit.probes.membership.FPR_TARGETS


def _points(key: str, rates) -> tuple[str, ...]:
    return tuple(f"{key}={r:g}{mark}" for r in rates for mark in ("", ";unsupported"))


SLOTS = {
    "train": ("train=same", "train=clean"),
    "identity_fmr": _points("fmr", IDENTITY_FMRS),
    "inversion_fmr": _points("fmr", INVERSION_FMRS),
    "cloak_fmr": _points("fmr", CLOAK_FMRS),
    "membership_fpr": _points("fpr", MEMBERSHIP_FPRS),
    "attack": ("white-box", "query", "black-box", "random-face"),  # audit.probes.inversion.THREAT_MODELS
    "judge": ("target", "evaluator"),
    "cloaker": ("none", "white-box", "transfer:{model}"),  # transfer:<surrogate model> or transfer:ensemble(a+b)
    # audit.probes.membership: SCORES, each also calibrated by a reference model ('@reference'), and FITTED
    "membership_attack": ("tightness", "spread", "isolation", "tightness@reference", "spread@reference",
                          "isolation@reference", "learned", "strongest"),
}
LEAKAGE = ("{train}", "direct")  # direct: the attribute model's own heads
SETTING_FORMS: dict[str, tuple[str, ...]] = {
    **{m: LEAKAGE for m in ("accuracy", "balanced_accuracy", "macro_f1", "chance", "normalised_gain", "mae", "rmse",
                            "baseline_mae", "mae_gain", "bucket_accuracy", "mask_effect")},
    **{m: ("{identity_fmr}",) for m in ("threshold", "fnmr", "fmr", "tar_at_fmr", "group_fmr", "group_fnmr",
                                        "group_persons", "group_fmr_trials", "fmr_max_min", "fmr_max_geomean",
                                        "fnmr_max_min", "fnmr_max_geomean", "fdr")},
    **{m: ("",) for m in ("eer", "roc_auc", "rank1", "fta_rate")},
    "sar_type1": ("{attack};{judge};{inversion_fmr}",),
    "sar_type2": ("{attack};{judge};{inversion_fmr}",),
    "inversion_rank1": ("{attack};{judge}",),
    "ssim": ("{attack}", "{cloaker}"),
    "psnr": ("{attack}", "{cloaker}"),
    "queries_per_victim": ("query",),
    "recon_attr_accuracy": ("original", "reconstruction"),
    "recon_attr_mae": ("original", "reconstruction"),
    **{m: ("{cloaker}",) for m in ("psr_at_1", "psr_at_5", "psr_at_10", "linf")},
    "psr_at_tau": ("{cloaker};{cloak_fmr}",),
    "membership_auc": ("{membership_attack}",),
    "membership_balanced_accuracy": ("{membership_attack}",),
    "membership_tpr_at_fpr": ("{membership_attack};{membership_fpr}",),
    "membership_fpr": ("{membership_attack};{membership_fpr}",),
    "membership_nonmembers_needed": tuple(f"fpr={r:g}" for r in MEMBERSHIP_FPRS),
}
SLOT = re.compile(r"\{(\w+)\}")


def _literal(glob: str) -> str:
    """A string the glob matches: ``*`` as nothing, ``?`` as 'x', a ``[set]`` as its first character."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            i += 1
        elif c == "?":
            out.append("x")
            i += 1
        elif c == "[" and "]" in glob[i + 2:]:
            end = glob.index("]", i + 2)
            first = glob[i + 1:end].lstrip("!")
            out.append(first[0] if first and glob[i + 1] != "!" else "x")
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _expand(form: str, models: list[str]) -> list[str]:
    """Every setting ``form`` stands for, a surrogate model named as in ``models``."""
    m = SLOT.search(form)
    if m is None:
        return [form]
    if m.group(1) == "model":
        values = models
    else:
        values = SLOTS[m.group(1)]
    return [s for v in values for s in _expand(form[:m.start()] + v + form[m.end():], models)]


def _readable(form: str) -> str:
    """A form as the error message shows it: each slot as its choices (``fmr=0.001|0.01[;unsupported]``)."""
    def show(m):
        if m.group(1) == "model":
            return "MODEL"
        values = [v for v in SLOTS[m.group(1)] if not v.endswith(";unsupported")]
        if m.group(1).endswith(("_fmr", "_fpr")):  # an operating point
            key = values[0].split("=")[0]
            return f"{key}=" + "|".join(v.split("=")[1] for v in values) + "[;unsupported]"
        return "(" + "|".join(SLOT.sub(show, v) for v in values) + ")"

    return SLOT.sub(show, form)


def check_setting(metric: str, pattern: str) -> None:
    """A ``where: setting`` value (glob allowed, rates already written as results store them) that can match a
    setting the probe stores for ``metric``; metrics a plugin probe registers are not checked."""
    forms = SETTING_FORMS.get(metric)
    if forms is None:
        return
    # Surrogate model names are free: try as the name every piece of text the pattern spells (between wildcards,
    # ':' and ';'), and what it spells after each ':' ('*ensemble*', 'tr*:arcface_r50' and '?ransfer:x' all load).
    pieces = [*re.split(r"[*?\[\]:;]", pattern), *(_literal(p.split(";")[0]) for p in pattern.split(":")[1:])]
    models = [p for p in dict.fromkeys(pieces) if p] or ["MODEL"]
    if any(fnmatch.fnmatchcase(s, pattern) for f in forms for s in _expand(f, models)):
        return
    raise ValueError(f"setting {pattern!r} matches nothing stored for {metric}, whose settings read "
                     + " or ".join(repr(_readable(f)) if f else "'' (none)" for f in forms))
