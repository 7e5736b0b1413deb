"""Signing a stored run and the reports made from it (``faceaudit attest``).

A report is signed only when it is the run's own, made from its current findings, and shows what the store holds:
the report is rendered again from the store, with the inputs it says it was rendered from
(:class:`audit.report.render.PageInputs`, checked against the store where the page prints them), and compared with
the given file: an HTML page byte for byte, a PDF byte for byte too (rendered again with the results it carries, the
store's but for when its findings were evaluated). An edited number, verdict, plot or picture is refused with the
first words that differ; a report rendered by another faceaudit or other rendering libraries is asked to be
rendered again here.
"""

from __future__ import annotations

import hashlib
import html as html_mod
import json
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

import audit
from audit.atomic import write_atomic
from audit.errors import ConfigError, NotSignable
from audit.evidence import attest, export, shown
from audit.paths import claimed_stem, out_folder, require_store
from audit.report.build import PAGE_DESCRIPTION, QUALITY_SUFFIX, report_name, run_report
from audit.report.pdf import write_pdf
from audit.report.render import PageInputs, renderer_versions
from audit.store import Store


def attest_run(run_ref: str, db: str | Path, key: str | Path, out_dir: str | Path, signer: str | None = None,
               reports: list[Path] | None = None) -> list[Path]:
    """Sign an in-toto statement about a stored run: subjects are the model, the dataset, the results
    JSON (written beside the bundle) and each given report file. Returns [results JSON, bundle].

    A report is signed only when it is the run's own, made from its current findings and showing what the store
    holds: a results JSON or a PDF's attached results equal to a fresh export, every page equal to the page this
    faceaudit renders from the store with the inputs the report carries (an edited number is refused)."""
    sig = attest.Signer.load(key, signer)
    reports = [Path(r) for r in reports or []]
    by_name: dict[str, Path] = {}
    for r in reports:
        if r.is_dir():
            raise ConfigError(f"--report {r}: is a folder; give each report file")
        if not r.is_file():
            raise ConfigError(f"--report {r}: no such file")
        # A subject is named by the file's name, and verify looks for it by that name beside the bundle: two files
        # of one name could not both be put there, and one of them would stand for both.
        other = by_name.setdefault(r.name, r)
        if other is not r:
            if other.resolve() == r.resolve():
                raise ConfigError(f"--report {r}: given twice; give each report once")
            raise ConfigError(f"--report {other} and --report {r}: two files named {r.name}; a signed file is named "
                              "by its file name alone, so rename one of them and sign again")
    require_store(db)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        run = store.run(run_id)
        findings = store.findings(run_id)
        attest.require_signable(run, findings)
        doc = export.results_document(store, run_id)
        for r in reports:
            shown.require_own_evidence(run, r, "--report")
            shown.require_same_results(doc, r, "--report")
            shown.require_current_findings(run, doc["findings"], r, "--report")
            require_page_as_stored(store, run_id, doc, r, "--report")  # every page as the store renders it
        data = export.dumps(doc)
    out_dir = out_folder(out_dir)  # made only once everything to sign is known to be signable
    # attestation-RUN, else -2, -3...: a new attestation never replaces an earlier one (its names are claimed), and
    # its results JSON is never named like a report it signs (each subject's name is its own)
    with claimed_stem(out_dir / f"attestation-{run_id}", [".results.json", ".intoto.json"], set(by_name)) as stem:
        results = write_atomic(stem.with_name(stem.name + ".results.json"), data)
        bundle = attest.sign(attest.statement(run, findings, [results] + reports, sig), sig)
        return [results, attest.write_bundle(bundle, stem.with_name(stem.name + ".intoto.json"))]


def require_page_as_stored(store: Store, run_id: str, doc: dict, path: Path, what: str) -> None:
    """Refuse a run report (HTML or PDF) that is not the file faceaudit renders from the store as it is, with the
    inputs the report says it was rendered from (:class:`PageInputs`, themselves checked against the store): an
    edited number, verdict, plot or picture is not signed, nor, in a PDF, anything added or changed beside its pages
    (an attachment, an outline, a script, an appended revision). A PDF is rendered again with the results it carries
    (the store's but for when its findings were evaluated, :func:`_carried_results`), then compared byte for byte;
    a results JSON has no page, only its bytes to compare (:func:`_carried_results`)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        _carried_results(path.read_bytes(), doc, path, what, f"export it again (faceaudit export {run_id}) and sign "
                                                               "the new file")
        return
    if suffix not in (".html", ".htm", ".pdf"):
        return
    again = f"render it again (faceaudit report {run_id}) and sign the new file"
    page = _page_inputs(store, run_id, path, what, again)
    html, attachments = run_report(store, run_id, doc, page)
    if suffix == ".pdf":
        attachments[shown.RESULTS_ATTACHMENT] = _carried_results(
            shown.attachment(path, shown.RESULTS_ATTACHMENT), doc, path, what, again)
        with tempfile.TemporaryDirectory(prefix="faceaudit-page-") as tmp:
            fresh = write_pdf(html, Path(tmp) / "page.pdf", attachments, page.when, PAGE_DESCRIPTION)
            differ = None if fresh.read_bytes() == path.read_bytes() else (
                page_difference(path, fresh) or "its pages are the store's, but the file holds more or other than "
                "them: an attachment, an outline, a script, a page setting or an appended revision")
    else:
        differ = _html_difference(path.read_bytes(), html)
    if differ:
        raise NotSignable(f"{what} {path}: is not the report faceaudit renders from run {run_id} as stored "
                          f"({differ}); an edited report is not signed: {again}")


def _page_inputs(store: Store, run_id: str, path: Path, what: str, again: str) -> PageInputs:
    """What ``path`` says it was rendered from, once each input it could only say falsely is checked against the
    store and this machine: the faceaudit and libraries that render, the packs whose findings it shows, the
    data-quality file it names, the minute it was generated (the page prints each); a page that ends with an
    attestation page is not signed again."""
    carried = shown.page_inputs(path)
    if carried is None:
        raise NotSignable(f"{what} {path}: does not say what it was rendered from (a report made by faceaudit before "
                          f"0.9.0, or an edited one), so its numbers cannot be checked against the store: {again}")
    try:
        page = PageInputs.from_json(carried)
    except ValueError as exc:
        raise NotSignable(f"{what} {path}: {exc}: {again}") from None
    if page.tool != audit.__version__:
        raise NotSignable(f"{what} {path}: was rendered by faceaudit {page.tool}; this faceaudit "
                          f"({audit.__version__}) renders other pages, so it cannot check that one's numbers: {again}")
    here = renderer_versions()
    other = [f"{name} {v} (here {here[name]})" for name, v in sorted(page.renderers.items()) if here[name] != v]
    if other:
        raise NotSignable(f"{what} {path}: was rendered with {', '.join(other)}, which draw other pages, so its "
                          f"numbers cannot be checked here: {again} on this machine")
    if page.attestation is not None:
        raise NotSignable(f"{what} {path}: ends with the attestation page of a report signed when it was rendered "
                          f"(report --sign-key; its own bundle covers it), which is not signed again: {again} (without "
                          "--sign-key)")
    applied = set(store.findings(run_id)["pack"])
    if page.packs is not None and not (page.packs and len(set(page.packs)) == len(page.packs)
                                       and set(page.packs) <= applied):
        raise NotSignable(f"{what} {path}: shows the findings of pack(s) {', '.join(page.packs)!r:.120}, which are not "
                          f"distinct packs applied to run {run_id} ({', '.join(sorted(applied)) or 'none'}): {again}")
    run = store.run(run_id)
    has_quality = not store.run_data_quality(run_id).empty
    named = re.compile(re.escape(report_name(run)) + r"(-\d{1,6})?" + re.escape(QUALITY_SUFFIX))
    if (page.quality_file is None) == has_quality or (has_quality and not named.fullmatch(page.quality_file)):
        expected = report_name(run) + QUALITY_SUFFIX if has_quality else "none (the run has no data-quality records)"
        raise NotSignable(f"{what} {path}: names {page.quality_file!r:.80} as its data-quality file where run "
                          f"{run_id}'s report names {expected}: {again}")
    when, finished = page.when, pd.Timestamp(run["finished_at"] or run["started_at"]).to_pydatetime()
    if not finished - timedelta(days=1) <= when <= datetime.now() + timedelta(days=1):  # (time zones may differ)
        raise NotSignable(f"{what} {path}: says it was generated on {page.generated}, but run {run_id} finished on "
                          f"{finished:%Y-%m-%d %H:%M} and it is now {datetime.now():%Y-%m-%d %H:%M}: a report is "
                          f"rendered after its run, and not later than now: {again}")
    return page


_EVALUATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?")


def _carried_results(data: bytes | None, doc: dict, path: Path, what: str, again: str) -> bytes:
    """``data``, the results a report carries (a results JSON, a PDF's attachment), when they are the bytes a fresh
    export (``doc``) writes but for when each finding was evaluated (a rule pack applied again with the same
    verdicts): an earlier time, well formed. Byte for byte, so that no key is repeated, reordered or added, no
    message or reference reworded, no other exporter named."""
    try:
        carried = json.loads(data) if data is not None else None
        rows, stored = carried["findings"], doc["findings"]
        when = [r["evaluated_at"] for r in rows]
        ok = len(rows) == len(stored) and all(isinstance(w, str) and _EVALUATED.fullmatch(w)
                                              and w <= str(s["evaluated_at"]) for w, s in zip(when, stored))
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        ok = False
    expected = ok and export.dumps({**doc, "findings": [{**s, "evaluated_at": w} for s, w in zip(stored, when)]})
    if data != expected:
        raise NotSignable(f"{what} {path}: the results it carries are not the run's as stored, byte for byte "
                          f"(faceaudit export {doc['run']['run_id']} writes them): {again}")
    return data


_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_BLOCK_TAG = re.compile(r"<(?:/?(?:p|div|li|tr|h[1-6]|caption|figcaption|section|table|ul|ol)\b|br)[^>]*>", re.I)
_TAG = re.compile(r"<[^>]*>")


def _text_lines(text: str) -> list[str]:
    """The words a reader sees, a line per paragraph, heading, list item or table row (tags, scripts and styles
    dropped, entities read)."""
    text = _TAG.sub(" ", _BLOCK_TAG.sub("\n", _SCRIPT_OR_STYLE.sub(" ", text)))
    return [line for line in (" ".join(html_mod.unescape(part).split()) for part in text.splitlines()) if line]


def _first_difference(shown_lines: list[str], stored_lines: list[str], where: str = "") -> str | None:
    """Where two pages' words first differ, quoted around the first character that differs (None: nowhere)."""
    for i in range(max(len(shown_lines), len(stored_lines))):
        a = shown_lines[i] if i < len(shown_lines) else ""
        b = stored_lines[i] if i < len(stored_lines) else ""
        if a != b:
            at = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            return f"{where}it shows {_around(a, at)} where the store gives {_around(b, at)}"
    return None


def _around(line: str, at: int, width: int = 36) -> str:
    """``line`` quoted from ``width`` characters before ``at`` to ``width`` after it (nothing: ``(nothing)``)."""
    if not line:
        return "(nothing)"
    start, stop = max(0, at - width), at + width
    return ("..." if start else "") + repr(line[start:stop]) + ("..." if stop < len(line) else "")


def _html_difference(shown_html: bytes, stored_html: str) -> str | None:
    """What differs between a page's bytes and the page the store renders (None: nothing)."""
    if shown_html == stored_html.encode("utf-8"):
        return None
    return (_first_difference(_text_lines(shown_html.decode("utf-8", "replace")), _text_lines(stored_html))
            or "the same words, but a plot, picture or the page's markup or encoding differs")


def page_difference(shown_pdf: Path, stored_pdf: Path) -> str | None:
    """What differs between the pages of two PDF reports (None: nothing): each page's drawing (text, plots,
    pictures); attachments are not pages."""
    from pypdf import PdfReader

    try:
        shown_pages = PdfReader(shown_pdf).pages
        stored_pages = PdfReader(stored_pdf).pages
        fonts_a, fonts_b = (set().union(*map(_fonts, pages)) for pages in (shown_pages, stored_pages))
        if fonts_a != fonts_b:  # other fonts break lines, pages and repeated table heads elsewhere: the words read
            # back from the two files differ wherever they do, so no edit can be told apart from the fonts' doing
            listed = _font_list(fonts_a), _font_list(fonts_b)
            if listed[0] == listed[1]:  # names that differ only where a message does not show them
                listed = (listed[0], "fonts of other names")
            return (f"set in {listed[0]} where this machine sets it in {listed[1]}: rendered where other fonts are "
                    "installed, or edited; a report is signed on the machine that rendered it")
        if len(shown_pages) != len(stored_pages):
            return f"{len(shown_pages)} pages where the store gives {len(stored_pages)}"
        for n, (a, b) in enumerate(zip(shown_pages, stored_pages), 1):
            if _drawing(a) != _drawing(b):
                return (_first_difference(a.extract_text().splitlines(), b.extract_text().splitlines(), f"page {n}: ")
                        or f"page {n}: the same words, but a plot, picture or the page's layout differs")
    except Exception as exc:  # noqa: BLE001 - the file already differs; a damaged object tree raises almost anything
        # (pypdf: NotImplementedError for an unknown stream filter), and the refusal must stay one line
        return f"its pages cannot be read ({type(exc).__name__})"
    return None


def _font_list(fonts: set[str], most: int = 8) -> str:
    """Font names as a message lists them: at most ``most``, each as :func:`shown.bounded` quotes a value read from a
    file, at most about 60 characters."""
    names = sorted({shown.bounded(f, 60) for f in fonts})
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return (", ".join(names[:most]) + more) or "no font"


def _fonts(page, most: int = 10_000) -> set[str]:
    """The fonts a PDF page draws with, by name, the subset tag dropped (``ABCDEF+DejaVuSans`` is ``DejaVuSans``):
    on the page and in the forms it draws, followed down, each resources dictionary once (a forged file's forms may
    point back at each other), ``most`` objects at most (ValueError past them)."""
    from pypdf.generic import DictionaryObject, IndirectObject

    names: set[str] = set()
    seen: set = set()
    todo = [page.get("/Resources")]
    while todo:
        ref = todo.pop()
        key = (ref.idnum, ref.generation) if isinstance(ref, IndirectObject) else id(ref)
        if ref is None or key in seen:
            continue
        seen.add(key)
        if len(seen) > most:
            raise ValueError("too many resources")
        resources = ref.get_object()
        if not isinstance(resources, DictionaryObject):
            continue
        for font in (resources.get("/Font") or DictionaryObject()).get_object().values():
            names.add(str(font.get_object().get("/BaseFont", "")).lstrip("/").split("+", 1)[-1])
        todo += [form.get_object().get("/Resources")
                 for form in (resources.get("/XObject") or DictionaryObject()).get_object().values()]
    return {n for n in names if n}


def _drawing(page) -> str:
    """A digest of a PDF page as drawn: its content, and every font, picture and form it uses, followed down (not
    back up to its parent); equal pages, equal digests, whatever their objects' numbers."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

    digest, seen = hashlib.sha256(), {}

    def walk(obj, depth: int = 0) -> None:
        if depth > 64:
            raise ValueError("objects nested too deep")
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in seen:  # an object met before is named by the order it was first met in
                digest.update(b"@%d" % seen[key])
                return
            seen[key] = len(seen)
            obj = obj.get_object()
        if isinstance(obj, DictionaryObject) and obj.get("/Type") == "/Page" and depth:
            digest.update(b"another page;")  # a link's target: that page is compared on its own
        elif isinstance(obj, DictionaryObject):
            for k in sorted(obj):
                if k not in ("/Parent", "/P"):  # back up the page tree, or to the page an annotation is on
                    digest.update(k.encode() + b"=")
                    walk(obj.raw_get(k), depth + 1)
            if isinstance(obj, StreamObject):
                digest.update(b"stream:" + obj.get_data())
        elif isinstance(obj, ArrayObject):
            digest.update(b"[")
            for item in obj:
                walk(item, depth + 1)
            digest.update(b"]")
        else:
            digest.update(repr(obj).encode() + b";")

    walk(page.indirect_reference or page)
    return digest.hexdigest()
