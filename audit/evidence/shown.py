"""What a faceaudit evidence file shows: which run it is about and which findings it was made from.

Signing (:mod:`audit.evidence.attest`) refuses a report of another run or one rendered before a rule pack was
applied again, and ``verify`` checks that a signed report shows the signed verdicts; both read files here. A results
JSON and the results embedded in a PDF report carry every finding; an HTML report shows its findings table, its
list of rules not judged and, in its head, :data:`FINDINGS_META`, the digest of every finding of the run.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from audit.errors import NotSignable

RESULTS_ATTACHMENT = "faceaudit-results.json"
"""Name of the JSON results embedded in every PDF report (equal to ``faceaudit export RUN``)."""
PAGE_ATTACHMENT = "faceaudit-page.json"
"""Name of what a PDF report was rendered from besides the store (:class:`audit.report.render.PageInputs`)."""
PAGE_META = "faceaudit-page"
"""``<meta name="faceaudit-page" content="...">`` in an HTML report's head: the same, HTML-escaped."""


def canonical_json(obj) -> bytes:
    """JSON bytes that do not depend on key order or spacing: what is signed and digested."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_HTML_RUN_ID = re.compile(rb'<span class="run-id">([^<]{1,200})</span>')


def attachment(path: Path, name: str) -> bytes | None:
    """The attachment ``name`` of a PDF; None when it has none or cannot be read."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        attached = PdfReader(path).attachments.get(name)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, PyPdfError):
        return None  # an unreadable or foreign file says nothing about a run
    return attached[0] if attached else None


_HTML_PAGE = re.compile(r'<meta name="' + PAGE_META + r'" content="([^"<>]{1,100000})">')


def page_inputs(path: Path) -> str | None:
    """The JSON an HTML report's head (:data:`PAGE_META`) or a PDF report's attachment (:data:`PAGE_ATTACHMENT`)
    says it was rendered from; None when it says nothing (a report made before faceaudit wrote them, or another
    file)."""
    if path.suffix.lower() == ".pdf":
        data = attachment(path, PAGE_ATTACHMENT)
        return None if data is None else data.decode("utf-8", "replace")
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    head = text.find("</head>")
    found = _HTML_PAGE.search(text, 0, head if head >= 0 else 1 << 16)  # in the head: no page text can reach it
    return html.unescape(found.group(1)) if found else None


def _results_doc(path: Path) -> dict | None:
    """The results document a results JSON is, or a PDF report carries embedded; None for any other file or one
    that cannot be read."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            doc = json.loads(path.read_bytes())
        elif suffix == ".pdf":
            attached = attachment(path, RESULTS_ATTACHMENT)
            if attached is None:
                return None
            doc = json.loads(attached)
        else:
            return None
    except (OSError, ValueError, RecursionError):
        return None  # an unreadable or foreign file says nothing about a run
    return doc if isinstance(doc, dict) else None


def evidence_run(path: Path) -> tuple[str, str | None] | None:
    """``(run_id, model sha256 or None)`` a faceaudit evidence file says it is about: a results JSON (its
    ``run``/``model``), a PDF report (its embedded results) or an HTML report (the run id it shows);
    None when the file says nothing a faceaudit file would."""
    if path.suffix.lower() in (".html", ".htm"):
        try:
            with open(path, "rb") as fh:
                found = _HTML_RUN_ID.search(fh.read(1 << 20))  # the subtitle is at the top
        except OSError:
            return None
        return (html.unescape(found.group(1).decode("utf-8", "replace")), None) if found else None
    doc = _results_doc(path)
    try:
        run_id, model = doc["run"]["run_id"], (doc.get("model") or {}).get("sha256")
    except (KeyError, TypeError, AttributeError):
        return None
    return (run_id, model) if isinstance(run_id, str) else None


def bounded(text: str, most: int = 80) -> str:
    """A value read from a file (a run id, a pack, a rule id, a status), as a one-line message may quote it: as it is
    when it looks like an identifier or words (letters, digits, spaces, ``_.:-``, at most ``most`` characters), else
    quoted in ASCII and cut to about ``most`` characters (a newline, markup or a few thousand characters in a forged
    file would otherwise split, dress or swamp the refusal)."""
    text = str(text)
    if re.fullmatch(rf"[\w .:-]{{1,{most}}}", text, flags=re.ASCII):
        return text
    quoted = ascii(text[:most])
    return (quoted[:most + 2] + "..." if len(quoted) > most + 2 else quoted) + (" (cut)" if len(text) > most else "")


def require_own_evidence(run: dict, path: Path, what: str) -> None:
    """Refuse a file that is not evidence of ``run``: a report or results of another run (or model)."""
    about = evidence_run(path)
    if about is None:
        raise NotSignable(f"{what} {path}: not a faceaudit report or results file (no run id in it); an attestation "
                          f"covers only the reports of run {run['run_id']}")
    run_id, model = about
    if run_id == run["run_id"] and model is not None and model != run["model_id"]:
        raise NotSignable(f"{what} {path}: is a report of run {run_id} of another model (sha256 {bounded(str(model)[:16])}"
                          "...), not of the run as stored; an attestation covers only its own run's reports")
    if run_id != run["run_id"]:
        raise NotSignable(f"{what} {path}: is the report of run {bounded(run_id)}, not of run {run['run_id']}; "
                          "an attestation covers only its own run's reports")


SAME_RESULTS = ("run", "model", "dataset", "config", "seeds", "environment", "probes", "metrics", "data_quality")
"""What a results document carries (a results JSON, or a PDF report's attachment) that must equal the stored run's
for it to be signed as that run's evidence; its findings are compared apart (:func:`require_current_findings`: a
pack applied again changes when they were evaluated, not what they say), the exporting version not at all."""


def require_same_results(fresh: dict, path: Path, what: str) -> None:
    """Refuse a results JSON or PDF report whose results document says other than the stored run (``fresh``, a
    new export of it): edited numbers, another model or dataset, another configuration. An HTML report carries no
    results document; its findings are checked (:func:`require_current_findings`), and the numbers any report shows
    by rendering it again (:func:`audit.report.signing.require_page_as_stored`)."""
    doc = _results_doc(path)
    if doc is None:
        return
    differ = [k for k in SAME_RESULTS if canonical_json(doc.get(k)) != canonical_json(fresh.get(k))]
    if differ:
        raise NotSignable(f"{what} {path}: its results ({', '.join(differ)}) differ from run {fresh['run']['run_id']} "
                          "as stored; sign the run's own report or results, made from the store as it is")


FINDINGS_META = "faceaudit-findings"
"""``<meta name="faceaudit-findings" content="sha256:HEX">`` in an HTML report: :func:`findings_digest` of the run's
findings (all packs, whatever ``--pack`` the report shows) as they were when it was rendered."""
DIGEST_FIELDS = ("pack", "pack_version", "pack_hash", "rule_id", "title", "status", "severity", "probe", "metric",
                 "observed", "ci_low", "ci_high", "warn_if", "fail_if", "judged", "judged_by")
"""What :func:`findings_digest` covers of each finding: what decides and shows its verdict; not when it was
evaluated (applying the same pack again changes no finding) nor the wording of its message."""


def findings_digest(rows: list[dict]) -> str:
    """SHA-256 over a run's findings as the results document lists them (``results_document(...)["findings"]``,
    also the rows embedded in a PDF report), in no particular order: equal digests, equal verdicts and values."""
    lines = sorted(canonical_json({k: r.get(k) for k in DIGEST_FIELDS}) for r in rows if isinstance(r, dict))
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


@dataclass(frozen=True)
class ShownFindings:
    """The findings an evidence file was made from (:func:`shown_findings`)."""

    statuses: dict[tuple[str, str], str] | None
    """(pack, rule id) -> status, for every finding the file shows (an HTML report rendered with ``--pack`` shows
    only those packs); None when only a digest is known."""
    digest: str | None
    """:func:`findings_digest` of all the run's findings when the file was written; None when the file has none."""


_HTML_META = re.compile(r'<meta\s+name="' + FINDINGS_META + r'"\s+content="sha256:([0-9a-f]{64})"')
_HTML_FINDINGS = re.compile(r'<table class="findings" id="findings-table".*?</table>', re.S)
_HTML_ROW = re.compile(r'<tr data-status="([a-z_]+)"[^>]*>(.*?)</tr>', re.S)
_HTML_RULE = re.compile(r'<span class="mono pack">([^<]*) \u00b7</span> <span class="mono rule-id">([^<]*)</span>')
_HTML_NOT_JUDGED = re.compile(r'<h3 id="not-judged">.*?</ul>', re.S)
_HTML_NOT_JUDGED_RULE = re.compile(r'<span class="mono nobreak">([^<]*) \u00b7 ([^<]*)</span>')
_HTML_NO_PACK = "from a rule pack (none applied)"


def _html_findings(text: str) -> ShownFindings | None:
    """What an HTML run report shows: its findings table (pack, rule, status of every judged rule), its list of
    rules not judged, and the digest in its head when it has one; None when the page has none of these."""
    head = text.find("</head>")
    meta = _HTML_META.search(text, 0, head if head >= 0 else 1 << 16)  # in the head: no page text can reach it
    table, not_judged = _HTML_FINDINGS.search(text), _HTML_NOT_JUDGED.search(text)
    if table is None and not_judged is None and _HTML_NO_PACK not in text:
        return ShownFindings(None, meta.group(1)) if meta else None
    statuses = {}
    for status, row in _HTML_ROW.findall(table.group(0) if table else ""):
        rule = _HTML_RULE.search(row)
        if rule:
            statuses[(html.unescape(rule.group(1)), html.unescape(rule.group(2)))] = status
    for pack, rule_id in _HTML_NOT_JUDGED_RULE.findall(not_judged.group(0) if not_judged else ""):
        statuses[(html.unescape(pack), html.unescape(rule_id))] = "not_applicable"
    return ShownFindings(statuses, meta.group(1) if meta else None)


def shown_findings(path: Path) -> ShownFindings | None:
    """The findings a faceaudit evidence file was made from: every finding of a results JSON or of the results
    embedded in a PDF report; the findings an HTML report shows (and, once the renderer writes it, the digest of
    :data:`FINDINGS_META`). None when the file carries none that can be read."""
    if path.suffix.lower() in (".html", ".htm"):
        try:
            return _html_findings(path.read_bytes().decode("utf-8", "replace"))
        except OSError:
            return None
    doc = _results_doc(path)
    rows = doc.get("findings") if doc else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return None
    statuses = {(str(r.get("pack")), str(r.get("rule_id"))): str(r.get("status")) for r in rows}
    return ShownFindings(statuses, findings_digest(rows))


def _counts(statuses: dict) -> str:
    values = list(statuses.values())
    return " ".join(f"{s} {values.count(s)}" for s in ("fail", "warn", "pass"))


def require_current_findings(run: dict, current: list[dict], path: Path, what: str) -> None:
    """Refuse a report (or results file) made from other findings than the run's stored ones (``current``: the
    results document's ``findings``): rendered before a rule pack was applied to the run again, its verdicts are
    not the ones the statement signs."""
    shown = shown_findings(path)
    if shown is None:
        return  # a page whose layout is not known: nothing to compare (a faceaudit report always has its findings)
    now = {(str(r.get("pack")), str(r.get("rule_id"))): str(r.get("status")) for r in current}
    if shown.digest is not None:
        stale = shown.digest != findings_digest(current)
    else:  # an HTML report without the digest: the verdicts of the packs it shows, as stored now
        packs = {pack for pack, _ in shown.statuses}
        stale = (not shown.statuses and bool(now)) or shown.statuses != {k: v for k, v in now.items() if k[0] in packs}
    if not stale:
        return
    again = (f"export it again (faceaudit export {run['run_id']})" if path.suffix.lower() == ".json"
             else f"render it again (faceaudit report {run['run_id']})")
    says = ""
    if shown.statuses is not None:
        shown_packs = {pack for pack, _ in shown.statuses}
        said = {k: v for k, v in now.items() if k[0] in shown_packs} or now
        changed = sorted(k for k in set(shown.statuses) | set(said) if shown.statuses.get(k) != said.get(k))
        added = sorted({pack for pack, _ in now} - shown_packs) if shown_packs else []
        what_changed = (f"e.g. {bounded(changed[0][0])} {bounded(changed[0][1])}: "
                        f"{bounded(shown.statuses.get(changed[0], 'not shown'))} there, "
                        f"{bounded(said.get(changed[0], 'none'))} now" if changed else
                        f"pack(s) {', '.join(added)} applied since" if added else
                        "the same verdicts, but the findings' values or messages differ")
        says = f"it says {_counts(shown.statuses)}, the run now {_counts(said)}: {what_changed}; "
    raise NotSignable(f"{what} {path}: predates the run's current findings ({says}a rule pack was applied again "
                      f"since it was made): {again} and sign the new file")
