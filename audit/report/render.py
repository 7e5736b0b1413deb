"""Build report contexts from the store and render them with Jinja2 (templates/ at the top level).

The report never runs a probe: everything comes from the store, so a report can be rebuilt,
re-ruled or compared at any time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

import pandas as pd
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

import audit
from audit import compare
from audit import probes as probe_mod
from audit.atomic import write_atomic
from audit.config import computed_by_other
from audit.devices import describe, stored_compute
from audit.evidence.dataset import dataset_identity
from audit.evidence.gate import undecided
from audit.metrics.catalogue import METRICS
from audit.metrics.settings import is_unsupported, operating_point, rate_of
from audit.metrics.verification import OperatingPoint
from audit.report import narrative, plots
from audit.resources import templates_dir
from audit.store import Store

TEMPLATES = templates_dir()
STATUS_ORDER = {"fail": 0, "warn": 1, "pass": 2, "not_applicable": 3}
PRINTED_ROWS = 40
"""A comparison's paired differences or rankings print when they have at most this many rows (a few models on one
probe); longer ones are left to their CSV attachments, as the HTML shows them all."""
HEADLINE = [  # (label, probe, metric, where)
    ("TAR @ FMR 1e-3, clean", "identity", "tar_at_fmr", {"condition": "clean", "setting": "fmr=0.001"}),
    ("FNMR @ system τ, surgical mask", "identity", "fnmr", {"condition": "mask:surgical", "setting": "fmr=0.001"}),
    ("Sex leakage, clean", "leakage", "normalised_gain", {"condition": "clean", "attribute": "sex"}),
    ("Skin-tone leakage, surgical mask", "leakage", "normalised_gain",
     {"condition": "mask:surgical", "attribute": "skin_tone", "setting": "train=same"}),
    ("Age leakage (MAE gain), surgical mask", "leakage", "mae_gain",
     {"condition": "mask:surgical", "attribute": "age", "setting": "train=same"}),
    ("FDR across skin tone, clean", "identity", "fdr", {"condition": "clean", "attribute": "skin_tone"}),
    ("Membership AUC, strongest attack", "membership", "membership_auc", {"setting": "strongest"}),
    ("Membership TPR @ FPR 0.1, strongest attack", "membership", "membership_tpr_at_fpr",
     {"setting": "strongest;fpr=0.1"}),
]


RENDERERS = ("jinja2", "matplotlib", "numpy", "pillow", "weasyprint", "pydyf", "fonttools", "zlib")
"""The libraries whose versions shape a page beside faceaudit's own (markup, plots, pictures, the PDF, its fonts
and its compression). Installed fonts are not among them (see the README)."""
_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
_VERSION = re.compile(r"[0-9A-Za-z.+!_-]{1,40}")


def renderer_versions() -> dict[str, str]:
    """:data:`RENDERERS` as installed here."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        if name == "zlib":
            import zlib

            return zlib.ZLIB_RUNTIME_VERSION
        try:
            return version(name)
        except PackageNotFoundError:
            return "none"

    return {name: of(name) for name in RENDERERS}


@dataclass(frozen=True)
class PageInputs:
    """What a run report is rendered from besides the store. Written in its head (and attached to its PDF), so that
    ``attest`` can render the page again from the store and sign it only when it shows what the store holds
    (:func:`audit.report.signing.require_page_as_stored`, which also checks these against the store: they come from
    the file). In the head as ``<meta name="faceaudit-page" content="JSON">``
    (:data:`audit.evidence.shown.PAGE_META`)."""

    generated: str = field(default_factory=lambda: datetime.now().strftime("%Y-%m-%d %H:%M"))
    """When it was rendered, as the page shows it (to the minute, local time)."""
    no_faces: bool = False
    packs: tuple[str, ...] | None = None
    """The packs whose findings it shows (None: all the run's)."""
    quality_file: str | None = None
    """The data-quality CSV written beside it, as the page names it."""
    attestation: dict | None = None
    """The attestation page's fields (``report --sign-key``); None: no such page."""
    tool: str = audit.__version__
    """The faceaudit that rendered it: another version renders other pages from the same store."""
    renderers: dict = field(default_factory=renderer_versions)
    """The versions of :data:`RENDERERS` that rendered it."""

    @property
    def when(self) -> datetime:
        """:attr:`generated` as a time (the date of the PDF's attachments, so that a page renders the same twice)."""
        return datetime.strptime(self.generated, "%Y-%m-%d %H:%M")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str) -> "PageInputs":
        """The inputs a page's head or a PDF's attachment carries, each of its type; ValueError when they cannot be
        read (what they say is checked against the store apart)."""
        try:
            raw = json.loads(text)
            inputs = cls(generated=raw["generated"], no_faces=raw["no_faces"], packs=raw["packs"],
                         quality_file=raw["quality_file"], attestation=raw["attestation"], tool=raw["tool"],
                         renderers=raw["renderers"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable page inputs ({type(exc).__name__} {str(exc)[:80]!r})") from None
        wrong = [name for name, ok in (
            ("generated", isinstance(inputs.generated, str) and _MINUTE.fullmatch(inputs.generated)),
            ("no_faces", isinstance(inputs.no_faces, bool)),
            ("packs", inputs.packs is None or isinstance(inputs.packs, list) and all(isinstance(p, str)
                                                                                     for p in inputs.packs)),
            ("quality_file", inputs.quality_file is None or isinstance(inputs.quality_file, str)),
            ("attestation", inputs.attestation is None or isinstance(inputs.attestation, dict)),
            ("tool", isinstance(inputs.tool, str) and _VERSION.fullmatch(inputs.tool)),
            ("renderers", isinstance(inputs.renderers, dict) and set(inputs.renderers) == set(RENDERERS)
             and all(isinstance(v, str) and _VERSION.fullmatch(v) for v in inputs.renderers.values()))) if not ok]
        if not wrong:
            try:
                inputs.when
            except ValueError:
                wrong = ["generated"]
        if wrong:
            raise ValueError(f"unreadable page inputs (field {wrong[0]!r})")
        return replace(inputs, packs=None if inputs.packs is None else tuple(inputs.packs))


# Identifiers (setting names, paths, pack lists) may wrap after these characters, and nowhere inside a word.
_BREAK_AFTER = re.compile(r"(?<=[-._;,/:=|])(?=.)")


def breakable(value) -> Markup:
    """``value`` escaped, with a line-break opportunity (``<wbr>``) after each separator in ``_BREAK_AFTER``: a long
    identifier such as ``inputs.attacker_model`` may wrap as ``inputs.`` / ``attacker_model`` in a narrow column,
    never mid-word. Escaping is done piece by piece, so no ``<wbr>`` lands inside an entity."""
    return Markup("<wbr>").join(escape(part) for part in _BREAK_AFTER.split(str(value)))


def _g(v) -> str:
    return f"{float(v):g}"


def normalisation(mean, std) -> str:
    """The input normalisation of a model profile in words: ``(x − 127.5) / 127.5 on every channel`` when every
    channel is the same, else ``(x − mean) / std per channel, mean (…), std (…)``."""
    mean = list(mean) if isinstance(mean, (list, tuple)) else [mean]
    std = list(std) if isinstance(std, (list, tuple)) else [std]
    if len(set(map(_g, mean))) == 1 and len(set(map(_g, std))) == 1:
        return f"(x − {_g(mean[0])}) / {_g(std[0])}" + (" on every channel" if len(mean) > 1 or len(std) > 1 else "")
    return (f"(x − mean) / std per channel, mean ({', '.join(map(_g, mean))}), "
            f"std ({', '.join(map(_g, std))})")


def _rate(text: str) -> str:
    """An FMR/FPR target written one way throughout: powers of ten below 1 as 1e-4, anything else as %g."""
    v = float(text)
    k = round(math.log10(v)) if v > 0 else 0
    return f"1e{k}" if 0 < v < 1 and math.isclose(v, 10.0 ** k, rel_tol=1e-9) else f"{v:g}"


_RATE = re.compile(r"\b(FMR|FPR) (\d+(?:\.\d+)?(?:e[+-]?\d+)?)\b")
# Probes store their notes one a line; older stores joined them with a space, so a note that ended without a
# full stop ran into the next ("… person pairs) FMR 1e-05 not supported: …"): split there too.
_RUN_ON = re.compile(r"(?<=\)) (?=[A-Z])")


def probe_notes(messages) -> list[str]:
    """Each probe message split into its notes (one bullet each), FMR/FPR targets written one way."""
    out = []
    for message in messages:
        for line in str(message or "").splitlines():
            for note in _RUN_ON.split(line.strip()):
                if note.strip():
                    out.append(_RATE.sub(lambda m: f"{m.group(1)} {_rate(m.group(2))}", note.strip()))
    return out


def environment(user_templates: Path | None = None) -> Environment:
    loaders = [FileSystemLoader(str(user_templates))] if user_templates else []
    loaders.append(FileSystemLoader(str(TEMPLATES)))
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(["html", "j2", "xml"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v, d=3: narrative.fmt(v, d)
    # the number a rule judged, with the decimals it takes to compare with the rule's limits as it does
    env.filters["against"] = lambda v, f, d=3: narrative.fmt_against(v, (f.get("warn_if"), f.get("fail_if")), d)
    env.filters["pct"] = lambda v: narrative._pct(v, 1)
    env.globals["METRICS"] = METRICS
    env.globals["PRINTED_ROWS"] = PRINTED_ROWS
    env.globals["zip"] = zip
    env.filters["breakable"] = breakable
    env.globals["normalisation"] = normalisation
    env.globals["css"] = (TEMPLATES / "report.css").read_text()
    return env


def _artifact(store: Store, run_id: str, probe: str, name: str):
    df = store.artifacts(run_id, probe)
    df = df[df["name"] == name]
    if df.empty:
        return None
    data = bytes(df.iloc[0]["data"])
    return json.loads(data) if df.iloc[0]["mime"] == "application/json" else data


def _pick(metrics: pd.DataFrame, probe: str, metric: str, where: dict) -> pd.Series | None:
    rows = metrics[(metrics["probe"] == probe) & (metrics["metric"] == metric)]
    for k, v in where.items():
        rows = rows[rows[k] == v]
    if "setting" not in where and probe == "leakage":
        rows = rows[rows["setting"] == "train=same"]
    return None if rows.empty else rows.iloc[0]


def _cloak_context(store: Store, run_id: str, metrics: pd.DataFrame, no_faces: bool) -> dict:
    m = metrics[(metrics["probe"] == "cloak") & (metrics["metric"] == "psr_at_1")]
    if m.empty:
        return {"ran": False}
    parts = m["condition"].str.split("+purify:", n=1, expand=True, regex=False).reindex(columns=[0, 1])
    m = m.assign(cloak=parts[0], purifier=parts[1].fillna("none"))
    columns = ["none"] + sorted(set(m["purifier"]) - {"none"})
    cells = {(r.cloak, r.setting, r.purifier): {k: None if pd.isna(v) else float(v)
                                                for k, v in (("value", r.value), ("ci_low", r.ci_low),
                                                             ("ci_high", r.ci_high))}
             for r in m.itertuples()}
    keys = list(dict.fromkeys(zip(m["cloak"], m["setting"])))
    rows = [{"cloak": c, "setting": st, "cells": [cells.get((c, st, col)) for col in columns]}
            for c, st in sorted(keys)]
    grid = None if no_faces else _artifact(store, run_id, "cloak", "examples.png")
    records = _artifact(store, run_id, "cloak", "convergence.json") or []
    convergence = [{"setting": c["setting"], "method": c["method"], "eps": c["eps"], "steps": c["steps"],
                    "cap": c["cap"], "stopped_by": c["stopped_by"],
                    "best": max(c["curve"]) if c.get("curve") else None,
                    "recipe": (", ".join(w for w, on in (("momentum", c.get("momentum")),
                                                          (f"input diversity {c.get('diversity') or 0:g}",
                                                           c.get("diversity"))) if on) or "plain sign steps")
                    + ("; bfloat16 gradients" if c.get("precision") == "bfloat16" else "")}
                   for c in records]
    return {"ran": True, "columns": columns, "psr": rows, "verdicts": narrative.cloak_verdicts(m),
            "grid": base64.b64encode(grid).decode() if grid else None, "convergence": convergence,
            "convergence_plot": plots.cloak_convergence(records),
            "capped": sum(c["stopped_by"] == "cap" for c in convergence)}


def attacker_rows(doc: dict | None) -> dict:
    """Every leakage attacker tried, with its score, so a reader sees the reported one was not cherry-picked."""
    if not doc or "results" not in doc:
        return {"rows": [], "families": [], "folds": None, "repeats": None, "tuning": {}}
    families = sorted({f for r in doc["results"].values() for f in r["scores"]})
    rows = []
    for key, r in sorted(doc["results"].items(), key=lambda kv: (kv[0].split("|")[2], kv[0])):
        cond, setting, attr = key.split("|")
        picked = [f for fold in r["selected_per_fold"] for f in fold]
        rows.append({"attribute": attr, "condition": cond, "setting": setting, "metric": r["metric"],
                     "scores": [r["scores"].get(f) for f in families],
                     "picked": ", ".join(f"{f} {picked.count(f)}/{len(picked)}" for f in families if f in picked)})
    tuning = {a.replace("|", " under ") + (" (trained on it)" if "|" in a else ""):
              ", ".join(f"{f} {t['param']}" for f, t in fams.items()) for a, fams in doc.get("tuning", {}).items()}
    return {"rows": rows, "families": families, "folds": doc.get("folds"), "repeats": doc.get("repeats"),
            "tuning": tuning}


def computed_on(run: dict) -> str | None:
    """Where and through which backend the run computed, in words (None for runs stored before it was recorded
    and without a device)."""
    stored = stored_compute(run)
    return describe(stored) if stored else None


def rerun_command(run: dict) -> tuple[str, list[str]]:
    """The ``faceaudit run`` command that reproduces a stored run, and the stored settings it cannot pass
    (explicit overrides of preset values, which only the Python API takes)."""
    import shlex

    c = run["config"]
    parts = ["faceaudit", "run", "--model", c["model"], "--data", c["data"]]
    if c.get("labels"):
        parts += ["--labels", c["labels"]]
    if c.get("detector", "auto") != "auto":
        parts += ["--detector", c["detector"]]
    if c.get("min_face_confidence", 0.9) != 0.9:
        parts += ["--min-face-confidence", repr(float(c["min_face_confidence"]))]  # lossless
    for key, flag in (("profile", "--profile"), ("evaluator", "--evaluator"), ("attacker_model", "--attacker-model"),
                      ("attribute_model", "--attribute-model")):
        if c.get(key):
            parts += [flag, c[key]]
    for sur in c.get("surrogates") or []:
        parts += ["--surrogate", sur]
    parts += ["--probes", ",".join(c["probes"]), "--conditions", ",".join(c["conditions"])]
    if c.get("attributes") is not None:
        parts += ["--attributes", ",".join(c["attributes"])]
    if "cloak" in c["probes"]:
        parts += ["--cloak-eps", ",".join(f"{e:g}" for e in c.get("cloak_eps", [8.0]))]
    parts += ["--preset", c["preset"], "--seed", str(c["seed"]), "--device", c.get("device", "auto")]
    # the precision the attacks ran in, not 'auto' (which another machine may resolve differently); runs stored
    # before the setting existed ran in float32
    parts += ["--attack-precision", (c.get("resolved") or {}).get("attack_precision", "float32")]
    threads = stored_compute(run).get("attack_threads")
    if threads:  # the count the run's torch work used, which another machine's default may not be
        parts += ["--attack-threads", str(threads)]
    if not c.get("parity", True):
        parts.append("--no-parity")
    extra = [f"{k}={c[k]}" for k in ("folds", "cv_repeats", "bootstrap", "mlp_epochs", "max_images", "max_subjects",
                                      "batch_size")
             if c.get(k) is not None and k != "batch_size"]
    return " ".join(shlex.quote(str(x)) for x in parts), extra


def _system_setting(thresholds: dict | None) -> str:
    """The ``setting`` label of the system threshold the report's identity tables use."""
    if not thresholds:
        return "fmr=0.001"
    t = thresholds.get("demographic_fmr", 1e-3)
    points = {p["fmr"]: p for p in thresholds.get("operating_points", [])}
    return operating_point("fmr", t, not points.get(t, {"supported": True})["supported"])


def _operating_marks(ident: pd.DataFrame) -> pd.DataFrame:
    """(condition, setting, fmr, fnmr) at each system threshold, for the DET plot's markers."""
    rates = ident[ident["metric"].isin(["fmr", "fnmr"]) & ident["setting"].str.startswith("fmr=")]
    if rates.empty:
        return pd.DataFrame(columns=["condition", "setting", "fmr", "fnmr"])
    wide = rates.pivot_table(index=["condition", "setting"], columns="metric", values="value", aggfunc="first")
    return wide.reset_index().dropna(subset=["fmr", "fnmr"])


def _inversion_convergence(decoder: dict | None, query: dict | None = None) -> dict:
    """How the inversion attacks stopped (plateau of their own objective, or the preset's cap; the query-only attack
    always at its budget), as sentences and one plot; empty for runs stored before the attacks recorded it."""
    decoder = decoder or {}
    attacks = [("black-box decoder", "epochs", decoder.get("convergence")),
               ("white-box", "steps", decoder.get("white_box_convergence"))]
    lines = []
    for name, unit, rec in attacks:
        if not rec:
            continue
        why = (f"its objective stopped improving (no {rec['min_delta']:.1%} gain in {rec['patience']} {unit})"
               if rec["stopped_by"] == "plateau" else
               "the preset's cap came first, so a larger preset may strengthen it further")
        lines.append(f"The {name} attack ran {rec['steps']} of at most {rec['cap']} {unit} and stopped because {why}.")
    masked = decoder.get("masked") or {}
    if masked:  # since 0.11.0: the decoder of masked templates, tuned per mask
        cap = max(int((st.get("convergence") or {}).get("cap") or 0) for st in masked.values())
        capped = [c for c, st in masked.items() if (st.get("convergence") or {}).get("stopped_by") == "cap"]
        kept = [c for c, st in masked.items() if st.get("kept_epoch") == 0]
        lines.append("For masked templates the decoder was tuned on the auxiliary faces' templates under each mask, for "
                     f"at most {cap} epochs: " + (f"{', '.join(capped)} stopped at that cap, so a larger preset may "
                                                  "strengthen the attack" if capped else
                                                  "each stopped when its objective stopped improving")
                     + (f"; for {', '.join(kept)} tuning did not help and the clean decoder was kept" if kept else "")
                     + ".")
    if (query or {}).get("not_tried"):
        lines.append(f"The query-only attack was not run: {query['not_tried']}.")
    elif lines and (query or {}).get("budget"):  # it has no stopping rule of its own: the budget ends it
        lines.append(f"The query-only attack has no stopping rule of its own: it spent "
                     f"{float(query.get('queries_per_victim') or 0):.0f} queries per victim and stopped because its "
                     f"budget of {query['budget']} ran out, so a larger budget may strengthen it.")
    if decoder.get("synthetic_offered"):
        d = decoder.get("held_out_distance", {})
        kept = decoder.get("chosen") == "real+synthetic"
        lines.append(f"The decoder was offered {decoder['synthetic_offered']:,} synthetic faces of new people besides "
                     f"{decoder.get('real_pairs', 0):,} of the audit's own, and trained with and without them; "
                     + ("it kept them" if kept else "it left them out")
                     + ", because the held-out real persons were rebuilt closer to their templates "
                     + ("with" if kept else "without") + " them (cosine distance "
                     + f"{d.get('real+synthetic', float('nan')):.3f} with, {d.get('real', float('nan')):.3f} without).")
    if decoder.get("precision") == "bfloat16":
        lines.append("The decoder trained in mixed precision (bfloat16 convolutions; float32 weights, losses and "
                     "pixels); the white-box attack ran in float32, and every score in this section was measured "
                     "in float32 by onnxruntime.")
    plot = plots.convergence({f"{name} ({unit})": {name: rec} for name, unit, rec in attacks if rec})
    return {"convergence": lines, "convergence_plot": plot}


def query_limit(attack: dict | None, fmr: str = "0.001") -> str:
    """Whether a limit on queries per template would stop the query-only attacker, read off its success curve at
    ``fmr`` (the system threshold; else the strictest the curve has). The curve's first point is the decoder's image
    alone: where it already reaches the curve's highest share, a limit cannot help."""
    curve = (attack or {}).get("curve") or {}
    queries, sars = curve.get("queries") or [], curve.get("sar_type1") or {}
    key = fmr if fmr in sars else min(sars, key=float) if sars else None
    if not queries or key is None or not sars[key]:
        return ("This run did not record the attacker's success against the queries it spent, so it cannot say "
                "whether a limit on queries per template would help.")
    share = [float(x) for x in sars[key]]
    pct = lambda x: f"{100 * x:.0f}%"  # noqa: E731
    first, peak = share[0], max(share)
    if peak == 0:  # a budget-bound attack that found nothing shows nothing about what more queries would find
        return (f"No victim's image was accepted at FMR {key} within {queries[-1]} queries per victim. This does not "
                "show that templates cannot be inverted with more queries, nor that a limit on queries per template "
                "is unnecessary: it shows only that this attacker did not succeed within this budget.")
    if first >= peak:
        return (f"The decoder's image alone (the first query) is accepted for {pct(first)} of victims at FMR {key}, "
                f"as many as after {queries[-1]} queries: within this budget the queries added nothing, so a limit "
                f"on queries per template would not lower the {pct(first)} the decoder's image achieves; a larger "
                "budget may still add more.")
    rise = next(i for i, x in enumerate(share) if x > first)
    held = (f"hold this attacker to the {pct(first)} of victims the decoder's image alone achieves"
            if first > 0 else "have stopped this attacker in this run")
    rising = len(share) >= 2 and share[-1] > share[-2]
    end = (f"and is {pct(share[-1])} when the budget of {queries[-1]} queries ran out, still rising: a larger budget "
           "would likely reach more" if rising else f"and reaches {pct(peak)} within {queries[-1]} queries")
    return (f"The decoder's image alone (the first query) is accepted for {pct(first)} of victims at FMR {key}; the "
            f"share rises by {queries[rise]} queries {end}. A limit of {queries[rise - 1]} "
            f"{'query' if queries[rise - 1] == 1 else 'queries'} per template (the last count measured before it "
            f"rose) would {held}.")


def _membership_context(store: Store, run_id: str, metrics: pd.DataFrame) -> dict:
    """The membership section: verdicts, every attack's AUC (and which one each fold chose), the strongest attack's
    rows."""
    m = metrics[metrics["probe"] == "membership"]
    doc = _artifact(store, run_id, "membership", "attacks.json") or {}
    strongest = m[m["setting"].str.startswith("strongest") & (m["metric"] != "membership_nonmembers_needed")]
    attacks = m[(m["metric"] == "membership_auc") & (m["setting"] != "strongest")].sort_values("value",
                                                                                              ascending=False)
    chosen = [a for fold in doc.get("chosen_per_fold", []) for a in fold]
    # Every attack's TPR at each false-positive target beside its AUC: attacks rank differently at a low
    # false-positive rate than by AUC, and the rules judge the rate there (review F1).
    tpr = m[m["metric"] == "membership_tpr_at_fpr"]
    fprs = sorted({f for f in (rate_of(s, "fpr") for s in tpr["setting"]) if f is not None}, reverse=True)
    rows = []
    for a in attacks.to_dict("records"):
        cells = []
        for f in fprs:
            hit = tpr[tpr["setting"].map(lambda s, a=a["setting"], f=f: s.split(";")[0] == a and rate_of(s, "fpr") == f)]
            cells.append(hit.iloc[0].to_dict() | {"unsupported": is_unsupported(hit.iloc[0]["setting"])}
                         if len(hit) else None)
        rows.append(a | {"tpr": cells})
    chosen_at = {f: [a for fold in folds for a in fold]
                 for f, folds in ((float(k), v) for k, v in doc.get("chosen_per_fold_at_fpr", {}).items())}
    return {"ran": not m.empty, "verdicts": narrative.membership_verdicts(metrics),
            "attacks": rows, "fprs": fprs, "table": strongest.sort_values(["metric", "setting"])
            .to_dict("records"), "members": doc.get("members"), "nonmembers": doc.get("nonmembers"),
            "references": len(doc.get("reference_models", [])),
            "chosen": {a: chosen.count(a) for a in dict.fromkeys(chosen)}, "folds": len(chosen),
            "chosen_at": {f: {a: c.count(a) for a in dict.fromkeys(c)} for f, c in chosen_at.items()}}


def _unread_attributes(findings: pd.DataFrame, metrics: pd.DataFrame) -> dict | None:
    """Attributes the run measured that no applied pack reads: ``{attributes, unchecked}``, None when none is unread.
    Each finding records the attributes its rule reads (``location["reads"]``, :func:`audit.rules.engine.evaluate`);
    a pack judged before findings recorded them is read again from the file under its id when that is the one
    applied (same SHA-256), and named in ``unchecked`` otherwise."""
    from audit.errors import RuleError
    from audit.rules.engine import attributes_read, load_pack, measured_attributes

    read, unchecked, reloaded = set(), set(), set()
    for pack, digest, loc in findings[["pack", "pack_hash", "location"]].itertuples(index=False):
        loc = json.loads(loc) if isinstance(loc, str) else (loc or {})
        if "reads" in loc:
            read.update(loc["reads"])
            continue
        if (pack, digest) in reloaded:  # an older store's pack: read again once, not per finding
            continue
        reloaded.add((pack, digest))
        try:
            loaded = load_pack(pack)
        except RuleError:
            loaded = None
        if loaded is None or loaded.sha256 != digest:
            unchecked.add(str(pack))
        else:
            read.update(a for rule in loaded.rules for a in attributes_read(rule, metrics))
    unread = sorted(measured_attributes(metrics) - read)
    return {"attributes": unread, "unchecked": sorted(unchecked)} if unread else None


def _said_in_section(note: str, thresholds: dict | None, attackers: dict | None) -> bool:
    """Whether a probe note only repeats what a probe's section says (left to the HTML in print): what an unsupported
    FMR lacks (the identity section's operating-point table) and the leakage cross-validation and attackers (the
    leakage section's first paragraph, from the same attackers.json)."""
    points = (thresholds or {}).get("operating_points", [])
    tabled = probe_notes(OperatingPoint(p["fmr"], p["comparisons"], p["person_pairs"]).explain()
                         for p in points if not p["supported"])
    return note in tabled or bool((attackers or {}).get("repeats")) and note.startswith("Leakage: ") and \
        "-fold person-grouped cross-validation" in note


def run_context(store: Store, run_id: str, no_faces: bool = False, packs: list[str] | None = None,
                generated: str | None = None) -> dict:
    run = store.run(run_id)
    metrics = store.metrics(run_id)
    findings = store.findings(run_id)
    if packs:
        findings = findings[findings["pack"].isin(packs)]
    findings = findings.assign(_o=findings["status"].map(STATUS_ORDER)).sort_values(["_o", "pack", "rule_id"])
    findings["refs"] = findings["refs"].map(json.loads)
    where = findings["location"].map(lambda loc: json.loads(loc) if isinstance(loc, str) else loc or {})
    # The measured value the rule picked and its interval (None where the rule's result has none: a mean over results);
    # ``observed`` stays what the rule judged (the value or one end of the interval).
    for key in ("value", "ci_low", "ci_high"):
        findings[key] = pd.Series([w.get(key) for w in where], index=findings.index, dtype=object)
    probes = store.probes(run_id)
    quality = store.run_data_quality(run_id)
    leak = metrics[metrics["probe"] == "leakage"]
    ident = metrics[metrics["probe"] == "identity"]
    grid = None if no_faces else _artifact(store, run_id, "conditions", "examples.png")
    inv = metrics[metrics["probe"] == "inversion"]
    inv_grid = None if no_faces else _artifact(store, run_id, "inversion", "reconstructions.png")
    inv_meta = store.artifacts(run_id, "inversion")
    inv_rows = json.loads(inv_meta[inv_meta["name"] == "reconstructions.png"]["meta"].iloc[0])["rows"][1:] \
        if not inv_meta.empty and (inv_meta["name"] == "reconstructions.png").any() else []
    query_attack = _artifact(store, run_id, "inversion", "query_attack.json")
    thresholds = _artifact(store, run_id, "identity", "thresholds.json")
    curves = _artifact(store, run_id, "identity", "roc.json")
    system_setting = _system_setting(thresholds)
    leak_table = leak[leak["metric"].isin(["normalised_gain", "mae_gain", "balanced_accuracy", "mae", "mask_effect"])
                      & (leak["group"] == "all")].sort_values(["attribute", "metric", "condition", "setting"])
    ident_table = ident[ident["metric"].isin(["fnmr", "fmr", "tar_at_fmr", "eer", "roc_auc", "rank1"])
                        & ((ident["setting"] == "") | (ident["setting"] == system_setting))]
    demo_table = ident[ident["metric"].isin(["fmr_max_min", "fmr_max_geomean", "fnmr_max_min", "fnmr_max_geomean",
                                             "fdr"]) & (ident["condition"] == "clean")]
    counts = findings["status"].value_counts().to_dict()
    attackers = attacker_rows(_artifact(store, run_id, "leakage", "attackers.json"))
    notes = [{"text": n, "in_table": _said_in_section(n, thresholds, attackers)} for n in probe_notes(probes["message"])]
    # Rules judged get a row each in the findings and traceability tables; rules not judged are one short list
    # grouped by reason (a row each made the tables mostly "not applicable").
    judged = findings[findings["status"] != "not_applicable"]
    judged_rows = judged.to_dict("records")
    used = _artifact(store, run_id, "dataset", "used.json")
    not_judged = narrative.not_judged(findings)
    probes_run = sorted(set(probes.query("status == 'completed'")["probe"]))
    kind = (run.get("model_profile") or {}).get("kind", "embedding")
    return {
        "run": run, "findings": judged_rows, "counts": counts,
        "verdict": narrative.verdict(findings, metrics, probes_run, probe_mod.supported(kind), not_judged),
        "strict": [r["rule_id"] for r in judged_rows if narrative.flags_on_uncertainty(r)],
        "unread": _unread_attributes(findings, metrics),
        "not_judged": not_judged,
        "probes": probes.to_dict("records"), "quality": quality.to_dict("records"),
        "headline": [(label, _pick(metrics, p, m, w)) for label, p, m, w in HEADLINE if _pick(metrics, p, m, w)
                     is not None],
        "leakage": {"ran": not leak.empty, "plot": plots.leakage_bars(metrics), "table": leak_table.to_dict("records"),
                    "verdicts": narrative.leakage_verdicts(metrics, bool((used or {}).get("same_landmarks"))),
                    "attackers": attackers},
        "identity": {"ran": not ident.empty, "det": plots.det_curves(curves or {}, _operating_marks(ident)),
                     "points": (thresholds or {}).get("operating_points", []), "system_setting": system_setting,
                     "groups": plots.group_rates(metrics), "table": ident_table.to_dict("records"),
                     "demo": demo_table.to_dict("records"), "thresholds": thresholds,
                     "verdicts": narrative.identity_verdicts(metrics, judged)},
        "inversion": {"ran": not inv.empty, "table": inv.sort_values(["condition", "setting", "metric"])
                      .to_dict("records"),
                      "verdicts": narrative.inversion_verdicts(metrics, (query_attack or {}).get("queries_per_victim")),
                      "query": query_attack, "query_plot": plots.query_curve(query_attack),
                      "query_limit": query_limit(query_attack),
                      "grid": base64.b64encode(inv_grid).decode() if inv_grid else None, "grid_rows": inv_rows,
                      **_inversion_convergence(_artifact(store, run_id, "inversion", "decoder.json"), query_attack)},
        "membership": _membership_context(store, run_id, metrics),
        "cloak": _cloak_context(store, run_id, metrics, no_faces),
        "acquisition": _acquisition_context(store, run_id, metrics, no_faces),
        "grid": base64.b64encode(grid).decode() if grid else None,
        "no_faces": no_faces, "notes": notes,
        "packs": sorted(findings["pack"].unique()),
        "generated": generated or datetime.now().strftime("%Y-%m-%d %H:%M"),
        "metrics_used": sorted(set(metrics["metric"])),
        "traceability": traceability(judged),
        "used": used,
        "preprocessing": _artifact(store, run_id, "models", "preprocessing.json"),
        "rerun": rerun_command(run),
        "computed_on": computed_on(run),
        "dataset_ident": dataset_identity(run),
        "profile_sha256": hashlib.sha256(json.dumps(run["model_profile"], sort_keys=True).encode()).hexdigest(),
        **versions(run, findings),
    }


def versions(run: dict, findings: pd.DataFrame) -> dict:
    """Which faceaudit computed the run's numbers and judged its findings, beside the one rendering the report:
    ``computed_by`` (set only when another minor version, whose numbers mean something else, computed them: the page
    says so on top, as the gate and attest refuse such a run), ``judged_by`` (every version that judged a finding
    shown), ``ordered_pairs`` (identity's person-pair counts are ordered, each pair counted in both directions, as
    before 0.6.0: the page says so beside them)."""
    made = (run.get("environment") or {}).get("faceaudit")
    try:
        before_060 = made is None or tuple(int(x) for x in str(made).split(".")[:2]) < (0, 6)
    except ValueError:
        before_060 = True
    judged = sorted({str(v) or "before 0.4.0"
                     for v in findings.get("judged_by", pd.Series([], dtype=object)).fillna("")})
    return {"computed_by": computed_by_other(run), "made_by": made or "of unknown version", "judged_by": judged,
            "version": audit.__version__, "ordered_pairs": before_060}


def _acquisition_context(store: Store, run_id: str, metrics: pd.DataFrame, no_faces: bool) -> dict | None:
    """Failure to acquire (when a detector found the faces): the detector, the overall rate and the rate per
    group of each attribute, and the thumbnail grid of the failed photos (unless ``no_faces``)."""
    summary = _artifact(store, run_id, "acquisition", "acquisition.json")
    if summary is None:
        return None
    fta = metrics[(metrics["probe"] == "acquisition") & (metrics["metric"] == "fta_rate")]
    overall = fta[fta["attribute"] == ""]
    grid = None if no_faces else _artifact(store, run_id, "acquisition", "failures.png")
    return {"summary": summary, "overall": overall.iloc[0].to_dict() if not overall.empty else None,
            "groups": fta[fta["attribute"] != ""].sort_values(["attribute", "group"]).to_dict("records"),
            "grid": base64.b64encode(grid).decode() if grid else None}


def traceability(findings: pd.DataFrame) -> list[dict]:
    """One row per (clause, rule): each law or standard clause a pack cites, with the metric, threshold,
    measured value and interval, the number the rule judged, and status that serve as its evidence. Clauses sorted, fails first.
    ``findings`` as :func:`run_context` reads them (references parsed, interval taken from the location)."""
    rows = []
    for f in findings.to_dict("records"):
        for clause in f["refs"] or ["(no reference given)"]:
            rows.append({"clause": clause, "pack": f["pack"], "rule_id": f["rule_id"], "title": f["title"],
                         "metric": f.get("metric") or "", "probe": f.get("probe") or "", "warn_if": f["warn_if"],
                         "fail_if": f["fail_if"], "judged": f["judged"], "observed": f["observed"],
                         "value": f.get("value"), "ci_low": f["ci_low"], "ci_high": f["ci_high"],
                         "status": f["status"]})
    return sorted(rows, key=lambda r: (r["clause"], STATUS_ORDER.get(r["status"], 9), r["pack"], r["rule_id"]))


def run_appendix(ctx: dict) -> dict[str, pd.DataFrame]:
    """The tables the printed report leaves to attachments (name -> table); the HTML shows them in full."""
    att = ctx["leakage"]["attackers"]
    attackers = pd.DataFrame([{**{k: r[k] for k in ("attribute", "condition", "setting", "metric")},
                               **dict(zip(att["families"], r["scores"])), "used_in_folds": r["picked"]}
                              for r in att["rows"]])
    tables = {"leakage-attackers.csv": attackers,
              "cloak-convergence.csv": pd.DataFrame(ctx["cloak"].get("convergence"))}
    return {name: t for name, t in tables.items() if not t.empty}


def render_run(store: Store, run_id: str, page: PageInputs | None = None, templates: Path | None = None,
               findings_digest: str | None = None) -> tuple[str, dict[str, pd.DataFrame]]:
    """The run report and the tables its print leaves to PDF attachments (:func:`run_appendix`), rendered from the
    store and ``page`` (default: now, every pack, faces shown): its ``attestation`` (signer, key fingerprint, ...)
    adds the final attestation page, its ``quality_file`` names the CSV of every data-quality record written beside
    it (and attached to the PDF); ``findings_digest`` (:func:`audit.evidence.shown.findings_digest` of all the
    run's findings) and ``page`` itself go in the page's head, where ``attest`` reads what the page was made from."""
    page = page or PageInputs()
    packs = None if page.packs is None else list(page.packs)
    ctx = run_context(store, run_id, page.no_faces, packs, page.generated)
    appendix = run_appendix(ctx)
    html = environment(templates).get_template("report.html.j2").render(
        **ctx, attestation=page.attestation, quality_file=page.quality_file, findings_digest=findings_digest,
        page_inputs=page.to_json())
    return html, appendix


def headline_rows(store: Store, run_ids: list[str]) -> tuple[list[dict], list[str], list[dict]]:
    """(runs, column labels, rows of {label, metric, cells}) for the headline measures of several runs."""
    runs = [store.run(r) for r in run_ids]
    labels = [f"{r['model_name']} ({r['run_id'][-6:]})" for r in runs]
    metrics = {r: store.metrics(r) for r in run_ids}
    rows = []
    for label, probe, metric, where in HEADLINE:
        cells = [_pick(metrics[r], probe, metric, where) for r in run_ids]
        if all(c is None for c in cells):
            continue
        rows.append({"label": label, "metric": metric, "cells": cells})
    return runs, labels, rows


def run_directions(store: Store, run_ids: list[str], reference: int = 0) -> dict:
    """Series key -> stored direction over every run, the reference's first: a probe the reference did not run (an
    attribute classifier has no identity measures) still has its measures' directions, from the runs that did."""
    directions: dict = {}
    for r in [run_ids[reference]] + [r for i, r in enumerate(run_ids) if i != reference]:
        directions = {**compare.directions_of(store.metrics(r)), **directions}
    return directions


def compare_context(store: Store, run_ids: list[str], reference: int = 0) -> dict:
    runs, labels, rows = headline_rows(store, run_ids)
    findings = {r: store.findings(r) for r in run_ids}
    paired = _paired_context(store, runs, findings, labels, reference)
    # each run's preprocessing check: a run audited against a failed check (--accept-profile) is no fair measure
    checks = [compare.preprocessing_outcome(_artifact(store, r, "models", "preprocessing.json")) for r in run_ids]
    progress = [_progress(store, r) for r in runs]
    plots_ = []
    for row in rows:
        df = pd.DataFrame([{"label": lab, "value": c["value"] if c is not None else None,
                            "ci_low": c["ci_low"] if c is not None else None,
                            "ci_high": c["ci_high"] if c is not None else None}
                           for lab, c in zip(labels, row["cells"])])
        plots_.append(plots.compare_bars(df.astype({"value": float, "ci_low": float, "ci_high": float}),
                                         row["label"]))
    rule_ids = sorted({(f.pack, f.rule_id, f.title) for df in findings.values() for f in df.itertuples()})
    table, unjudged = [], 0
    # A rule not judged because its data cannot exclude a warning or failure says so, as each run's report does: shown
    # as plain "not applicable" it read as out of scope beside another model's "warn" (a review of the report).
    doubt = {r: undecided(f) for r, f in findings.items()}
    for pack, rule_id, title in rule_ids:
        statuses, could_be = [], []
        for r in run_ids:
            f = findings[r]
            hit = f[(f["pack"] == pack) & (f["rule_id"] == rule_id)]
            statuses.append(hit.iloc[0]["status"] if not hit.empty else "")
            level = doubt[r].loc[hit.index[0]] if not hit.empty else None
            could_be.append(level if isinstance(level, str) else "")  # None or NaN: nothing it cannot exclude
        if all(s in ("not_applicable", "") for s in statuses) and not any(could_be):  # judged for none: counted
            unjudged += 1
            continue
        table.append({"pack": pack, "rule_id": rule_id, "title": title, "statuses": statuses, "could_be": could_be})
    return {"runs": runs, "labels": labels, "rows": rows, "plots": [p for p in plots_ if p], "findings": table,
            "unjudged_rules": unjudged, "generated": datetime.now().strftime("%Y-%m-%d %H:%M"), "checks": checks, "progress": progress,
            "overridden": [lab for lab, c in zip(labels, checks) if c["state"] == "overridden"],
            "profiles_differing": compare.profiles_differing(runs, labels),
            "age_unpaired": sum(_measures_age(store, r) for r in run_ids) >= 2, **paired}


def _measures_age(store: Store, run_id: str) -> bool:
    """Whether the run measured age leakage (MAE gain), which keeps no per-image outcomes to compare paired."""
    m = store.metrics(run_id)
    return bool(((m["probe"] == "leakage") & (m["metric"] == "mae_gain")).any())


def _progress(store: Store, run: dict) -> dict:
    """A run's status and the probes it was asked for but did not complete (only completed probes are compared)."""
    probes = store.probes(run["run_id"])
    done = set(probes.loc[probes["status"] == "completed", "probe"])
    asked = list(dict.fromkeys((run.get("config") or {}).get("probes") or probes["probe"].tolist()))
    return {"status": run.get("status") or "", "unfinished": [p for p in asked if p not in done]}


def _paired_context(store: Store, runs: list[dict], findings: dict, labels: list[str], reference: int) -> dict:
    """What differs between the runs, which probes may be compared paired and, for those, the paired differences
    against the reference run, rankings and one forest plot per compared model (``findings``: run id -> its
    findings)."""
    run_ids = [r["run_id"] for r in runs]
    fields = [compare.run_fields(r, findings[r["run_id"]]) for r in runs]
    ran = [set(store.probes(r).query("status == 'completed'")["probe"]) for r in run_ids]
    comparability = compare.probe_comparability(fields, ran)
    comparable = {c["probe"] for c in comparability if not c["blocking"]}
    base = {"differences": compare.differences(fields), "comparability": comparability}
    if not comparable:
        return {**base, "paired": None}
    res = compare.compare_runs(store, run_ids, labels, run_directions(store, run_ids, reference),
                               reference=reference, seed=int(runs[reference]["seed"] or 0), probes=comparable)
    forests = []
    rows = pd.DataFrame(res["rows"])
    if not rows.empty:
        rows["label"] = [_series_label(r) for r in res["rows"]]
        for b, part in rows[rows["group"] == "all"].groupby("b", sort=False):
            forests.append(plots.forest(part, f"{b} − {labels[reference]}"))
    summary = compare.summarise(res["rows"])
    return {**base, "paired": res, "forests": [f for f in forests if f], "reference": labels[reference],
            "summary": summary, "model_verdicts": compare.model_verdicts(summary)}


def compare_appendix(ctx: dict) -> dict[str, pd.DataFrame]:
    """The comparison's full tables (name -> table): every paired difference, every ranking and its pairwise
    verdicts. Written beside the HTML and attached to the PDF; the print summarises them."""
    paired = ctx.get("paired") or {"rows": [], "rankings": []}
    measure = ("probe", "metric", "condition", "setting", "attribute", "group")
    # direction: which end of a ranking is the risky one (rank 1 is the highest value; for a lower-is-riskier
    # measure such as clean FNMR that is the safest model)
    ranks = [{**{k: k_[k] for k in measure}, "direction": k_.get("direction", "neutral"), **m}
             for k_ in paired["rankings"] for m in k_["models"]]
    ranks += [{**{k: k_[k] for k in measure}, "direction": k_.get("direction", "neutral"), "model": m["model"],
               "value": m["value"], "rank": None, "rank_low": None, "rank_high": None, "not_ranked": m["reason"]}
              for k_ in paired["rankings"] for m in k_.get("not_measured", [])]
    pairs = [{**{k: k_[k] for k in measure}, "direction": k_.get("direction", "neutral"), **p}
             for k_ in paired["rankings"] for p in k_["pairs"]]
    tables = {"paired-differences.csv": pd.DataFrame(paired["rows"]), "rankings.csv": pd.DataFrame(ranks),
              "rankings-pairwise.csv": pd.DataFrame(pairs)}
    return {name: t for name, t in tables.items() if not t.empty}


def _series_label(row: dict) -> str:
    parts = [row["metric"], row["condition"], row["setting"], row["attribute"],
             row["group"] if row["group"] != "all" else ""]
    return " · ".join(p for p in parts if p)


def render_compare(store: Store, run_ids: list[str], templates: Path | None = None, reference: int = 0,
                   beside: str | None = None) -> tuple[str, dict[str, pd.DataFrame]]:
    """The comparison report and its full tables (:func:`compare_appendix`); ``beside``: the report's file stem,
    when the tables are written beside it as ``STEM.NAME``."""
    ctx = compare_context(store, run_ids, reference)
    appendix = compare_appendix(ctx)
    html = environment(templates).get_template("compare.html.j2").render(**ctx, beside=beside)
    return html, appendix


def write_text_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, text.encode("utf-8"))
