"""A gate for CI pipelines: judge a stored run with rule packs, exit non-zero at a chosen level,
and write JUnit XML with one test case per rule so CI systems show each rule.

The gate evaluates the packs afresh on the stored metrics and writes nothing to the store.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import audit
from audit.config import computed_by_other
from audit.errors import ConfigError
from audit.rules.engine import any_judged
from audit.evidence.dataset import dataset_identity
from audit.atomic import write_atomic

LEVELS = {"fail": ("fail",), "warn": ("fail", "warn")}
"""--fail-on LEVEL: the finding statuses that make the gate fail."""


def undecided(findings: pd.DataFrame) -> pd.Series:
    """Per finding, the verdict its data could not exclude (``fail`` or ``warn``) when the rule was not judged because
    its interval is too wide to tell a pass from it, or its measured value reaches that limit itself (see
    :func:`audit.rules.engine.evaluate_rule`), else None. Findings judged before 0.3.0 record only the other end,
    checked against the fail limit (the warn limit for a rule without one)."""
    def level(row) -> str | None:
        if row["status"] != "not_applicable":
            return None
        loc = row["location"]
        loc = json.loads(loc) if isinstance(loc, str) else (loc or {})
        if "undecided" in loc or "other_end" not in loc:
            return loc.get("undecided")
        return "fail" if row.get("fail_if") else "warn"  # judged before 0.3.0: the other end against this limit
    if findings.empty:
        return pd.Series([], dtype=object)
    return findings.apply(level, axis=1)


def no_result_for(location) -> list[str]:
    """The attributes a finding's rule pools that the run has no result for (a pass then covers the others only)."""
    loc = json.loads(location) if isinstance(location, str) else (location or {})
    return list(loc.get("no_result_for") or [])


def fail_not_excluded(findings: pd.DataFrame) -> pd.Series:
    """Per finding, whether it is a warning whose measured value or interval reaches the fail limit (judged at the
    interval's lenient end, it warns; a fail cannot be excluded; :func:`audit.rules.engine.evaluate_rule`)."""
    if findings.empty:
        return pd.Series([], dtype=bool)

    def reaches(row) -> bool:
        if row["status"] != "warn":
            return False
        loc = row.get("location")
        loc = json.loads(loc) if isinstance(loc, str) else (loc or {})
        return "fail_not_excluded" in loc
    return findings.apply(reaches, axis=1).astype(bool)


@dataclass(frozen=True)
class GateResult:
    findings: pd.DataFrame
    fail_on: str
    blocking: pd.DataFrame
    """Findings at or above the level: the reason the gate is closed (empty when it is open). At ``--fail-on warn``
    they include the rules not judged because their data cannot tell a pass from a warning or a failure ("too
    uncertain": a wide interval; :func:`undecided`): the strict gate opens only on evidence of safety."""
    incomplete: str | None = None
    """Why the run cannot pass whatever its findings (it is interrupted, failed or still running)."""
    unjudged: str | None = None
    """Why the gate stays closed although nothing blocks: no rule could judge the run (every finding
    ``not_applicable``), so there is no verdict to open it on."""
    doubtful: pd.DataFrame | None = None
    """Undecided findings (:func:`undecided`), and warnings that cannot exclude a fail (:func:`fail_not_excluded`),
    that do not close the gate at its level (``--fail-on fail``: the data cannot tell them from a failure, and the
    gate closes on failures shown): named beside the verdict."""
    unread: tuple[str, ...] = ()
    """Attributes the run measured that no rule of the packs reads (a column named otherwise than the packs read it):
    named beside the verdict, which they do not change."""

    @property
    def n_undecided(self) -> int:
        """Rules not judged because their data cannot tell a pass from a warning or failure (:func:`undecided`)."""
        return int(undecided(self.findings).notna().sum()) if len(self.findings) else 0

    @property
    def exit_code(self) -> int:
        return 1 if len(self.blocking) or self.incomplete or self.unjudged else 0


def outdated(run: dict) -> str | None:
    """Why a run's numbers cannot be judged as this faceaudit's: another minor version computed them, whose numbers
    mean something else (0.4 and before: membership AUC understated on small sets, a photo-count 'spread' score, FNMR
    intervals too narrow; 0.3 and before: cloaks computed from the gallery image, masked templates inverted by the
    decoder alone, leakage attackers fitted for plain accuracy, all of which understated risk), or an unknown one;
    None otherwise."""
    if not (made := computed_by_other(run)):
        return None
    return (f"run {run['run_id']} was computed by faceaudit {made}, whose numbers mean something other than this "
            f"faceaudit's ({audit.__version__}); audit the model again with this one")


def judge(findings: pd.DataFrame, fail_on: str, run: dict | None = None) -> GateResult:
    """The gate's verdict; an incomplete run (status other than ``completed``), or one another minor version computed
    (:func:`outdated`), always closes it."""
    if fail_on not in LEVELS:
        raise ConfigError(f"--fail-on: expected one of {sorted(LEVELS)}, got {fail_on!r}")
    doubt = undecided(findings).notna() if len(findings) else pd.Series([], dtype=bool)
    strict = fail_on == "warn"  # a warning at least cannot be excluded: the strict gate closes
    blocking = findings[findings["status"].isin(LEVELS[fail_on]) | (doubt & strict)]
    doubtful = findings[(doubt | fail_not_excluded(findings)) & (not strict)]
    incomplete = None
    if run is not None and run["status"] != "completed":
        incomplete = (f"run {run['run_id']} is {run['status']}: an incomplete run never passes (its probes did not "
                      "all finish); finish it with faceaudit run --resume, or audit again")
    elif run is not None:
        incomplete = outdated(run)
    unjudged = None
    if not any_judged(findings):
        unjudged = (f"no rule judged the run: all {len(findings)} findings are not_applicable (probes not run, results "
                    "missing or too few persons), so nothing says it passes; run the probes the packs read, on enough "
                    "persons")
    return GateResult(findings, fail_on, blocking, incomplete, unjudged, doubtful)


def _dataset_properties(run: dict) -> list[tuple[str, str]]:
    """``dataset_fingerprint`` (the files); with a face detector also ``dataset_id`` and ``face_detector``."""
    ident = dataset_identity(run)
    out = [("dataset_fingerprint", ident["fingerprint"])] if ident["fingerprint"] else []
    if ident["detector"]:
        out += [("dataset_id", ident["id"]), ("face_detector", ident["detector"])]
    return out


def junit_xml(result: GateResult, run: dict) -> bytes:
    """JUnit XML: a suite per pack, a case per rule; blocking findings are failures (at ``--fail-on warn`` a rule too
    uncertain to judge as ``undecided``), other rules that could not be judged are skipped (not passed), warnings
    below the level pass with their message in system-out."""
    f = result.findings
    closed = [(name, kind, why) for name, kind, why in (("run is complete", "incomplete", result.incomplete),
                                                        ("a rule judged the run", "not-judged", result.unjudged)) if why]
    root = ET.Element("testsuites", name="faceaudit", tests=str(len(f) + len(closed)),
                      failures=str(len(result.blocking) + len(closed)),
                      skipped=str(int((f["status"] == "not_applicable").sum()
                                      - (result.blocking["status"] == "not_applicable").sum())), errors="0")
    if closed:  # a suite of its own, so every CI system shows why the run cannot pass whatever its findings
        suite = ET.SubElement(root, "testsuite", name="faceaudit-run", tests=str(len(closed)),
                              failures=str(len(closed)), errors="0", skipped="0")
        props = ET.SubElement(suite, "properties")
        for name, value in (("run_id", run["run_id"]), ("run_status", run["status"])):
            ET.SubElement(props, "property", name=name, value=str(value))
        for name, kind, why in closed:
            case = ET.SubElement(suite, "testcase", classname="faceaudit.run", name=name, time="0")
            ET.SubElement(case, "failure", message=f"{kind}: {why}", type=kind).text = why
    for pack, rows in f.groupby("pack", sort=True):
        blocking = rows.index.isin(result.blocking.index)
        suite = ET.SubElement(root, "testsuite", name=f"{pack}@{rows['pack_version'].iloc[0]}",
                              tests=str(len(rows)), failures=str(int(blocking.sum())), errors="0",
                              skipped=str(int(((rows["status"] == "not_applicable") & ~blocking).sum())))
        props = ET.SubElement(suite, "properties")
        for name, value in (("run_id", run["run_id"]), ("model", run["model_name"]),
                            ("model_sha256", run["model_id"]), *_dataset_properties(run),
                            ("pack_sha256", rows["pack_hash"].iloc[0]), ("fail_on", result.fail_on)):
            ET.SubElement(props, "property", name=name, value=str(value))
        for r, block in zip(rows.itertuples(), blocking):
            case = ET.SubElement(suite, "testcase", classname=f"faceaudit.{pack}", name=f"{r.rule_id}: {r.title}",
                                 time="0")
            refs = "; ".join(json.loads(r.refs)) if isinstance(r.refs, str) else ""
            kind = "undecided" if block and r.status == "not_applicable" else r.status
            detail = f"{kind.upper()} ({r.severity}): {r.message}" + (f" References: {refs}." if refs else "")
            if block:
                ET.SubElement(case, "failure", message=f"{kind}: {r.message}", type=kind).text = detail
            elif r.status == "not_applicable":
                ET.SubElement(case, "skipped", message=r.message)
            else:
                ET.SubElement(case, "system-out").text = detail
    for el in root.iter():  # names and texts from vendors and pack authors: only characters XML 1.0 allows
        el.attrib = {k: _xml_text(v) for k, v in el.attrib.items()}
        el.text = _xml_text(el.text) if el.text else el.text
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    """``value`` with each character XML 1.0 cannot carry (control characters such as ESC) written as ``\\xNN``:
    a JUnit file a CI system cannot parse would show no result at all."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def write_junit(result: GateResult, run: dict, path: Path) -> Path:
    if path.is_dir():
        raise ConfigError(f"--junit {path}: is a folder; give a file name such as faceaudit-junit.xml")
    if not path.parent.is_dir():
        raise ConfigError(f"--junit {path}: folder {path.parent} does not exist")
    return write_atomic(path, junit_xml(result, run))
