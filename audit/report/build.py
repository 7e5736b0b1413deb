"""Reports as files: a run's report and a comparison of runs, rendered from the store alone to HTML and PDF
(never replacing an earlier file), and the headline table the TUI shows."""

from __future__ import annotations

import hashlib
import re
from contextlib import ExitStack

import pandas as pd
from pathlib import Path

import audit
from audit.atomic import write_atomic
from audit.csvout import safe_csv
from audit.errors import ConfigError
from audit.evidence import attest, export, shown
from audit.evidence.dataset import dataset_identity
from audit.paths import claimed_stem, out_folder, require_store
from audit.report import narrative
from audit.report.pdf import write_pdf
from audit.report.render import PageInputs, headline_rows, render_compare, render_run, write_text_atomic
from audit.store import Store


def build_report(run_ref: str, db: str | Path, out_dir: str | Path, formats: list[str] | None = None,
                 no_faces: bool = False, packs: list[str] | None = None, sign_key: str | Path | None = None,
                 signer: str | None = None) -> list[Path]:
    """Render a stored run to HTML and/or PDF (from the store alone); returns the written files.

    The PDF is PDF/A-3b with the JSON results attached. With ``sign_key`` the report ends with an
    attestation page, and the results JSON plus a signed in-toto bundle (``.intoto.json``) covering
    the model, the dataset and every written file are written beside it.
    """
    formats = _formats(formats)
    sig = attest.Signer.load(sign_key, signer) if sign_key else None  # a bad key fails before anything is written
    if packs:  # findings are stored by pack id; a pack given as a file is named by the id inside it
        from audit.rules.engine import load_packs

        packs = [p.pack for p in load_packs(packs)]
    require_store(db)
    with ExitStack() as claim:  # the file names are claimed until written (paths.claimed_stem)
        with Store(db, read_only=True) as store:
            run_id = store.resolve_run(run_ref)
            run = store.run(run_id)
            findings = store.findings(run_id)
            if packs:
                findings = findings[findings["pack"].isin(packs)]
            if sig:  # before anything is written, the folder too
                attest.require_signable(run, findings)
            out_dir = out_folder(out_dir)
            quality = quality_csv(store.run_data_quality(run_id))
            suffixes = [f".{f}" for f in formats] + ([".results.json", ".intoto.json"] if sig else []) + (
                [QUALITY_SUFFIX] if quality else [])
            stem = claim.enter_context(claimed_stem(out_dir / report_name(run), suffixes))
            doc = export.results_document(store, run_id)
            page = PageInputs(no_faces=no_faces, packs=tuple(packs) if packs else None,
                              quality_file=stem.name + QUALITY_SUFFIX if quality else None,
                              attestation=_attestation_page(run, sig, stem) if sig else None)
            html, attachments = run_report(store, run_id, doc, page)
        written = write_files(html, stem, formats, write_text_atomic,
                              lambda h, path: write_pdf(h, path, attachments, page.when, PAGE_DESCRIPTION))
        if quality:  # the full list beside the report (the report itself summarises it)
            written.append(write_atomic(stem.with_name(stem.name + QUALITY_SUFFIX), quality))
        if sig:
            written.append(write_atomic(stem.with_name(stem.name + ".results.json"),
                                        attachments[shown.RESULTS_ATTACHMENT]))
            bundle = attest.sign(attest.statement(run, findings, written, sig), sig)
            written.append(attest.write_bundle(bundle, stem.with_name(stem.name + ".intoto.json")))
        return written


QUALITY_ATTACHMENT, QUALITY_SUFFIX, METRICS_ATTACHMENT = "data-quality.csv", ".data-quality.csv", "metrics.csv"
PAGE_DESCRIPTION = {shown.PAGE_ATTACHMENT: "what this report was rendered from besides the results store (JSON): "
                                            "faceaudit attest renders it again to check every page before signing"}


def run_report(store: Store, run_id: str, doc: dict, page: PageInputs) -> tuple[str, dict[str, bytes]]:
    """A run report's HTML and its PDF's attachments, from the store, the run's results document (``doc``:
    :func:`audit.evidence.export.results_document`) and ``page`` alone: what :func:`build_report` writes, and what
    :func:`audit.report.signing.require_page_as_stored` renders again to check a page before it is signed."""
    html, appendix = render_run(store, run_id, page, findings_digest=shown.findings_digest(doc["findings"]))
    quality = quality_csv(store.run_data_quality(run_id))
    # the print leaves the full metric tables, the data-quality list and long tables to these attachments
    attachments = {shown.RESULTS_ATTACHMENT: export.dumps(doc), METRICS_ATTACHMENT: safe_csv(store.metrics(run_id)),
                   **({QUALITY_ATTACHMENT: quality} if quality else {}),
                   **{name: safe_csv(table) for name, table in appendix.items()},
                   shown.PAGE_ATTACHMENT: page.to_json().encode("utf-8")}
    return html, attachments


COMPARE_TABLES = ("paired-differences.csv", "rankings.csv", "rankings-pairwise.csv")  # see render.compare_appendix


def quality_csv(quality: pd.DataFrame) -> bytes | None:
    """Every data-quality record as CSV (None when there are none): :func:`safe_csv`."""
    return None if quality.empty else safe_csv(quality)


def _attestation_page(run: dict, sig, stem: Path) -> dict:
    ident = dataset_identity(run)
    return {"dataset_fingerprint": ident["fingerprint"], "detector": ident["detector"], "signer": sig.name,
            "signed_at": sig.signed_at, "keyid": sig.keyid, "run_id": run["run_id"],
            "model_sha256": run["model_id"], "dataset_id": run["dataset_id"], "tool": audit.__version__,
            "bundle": stem.name + ".intoto.json", "pdf": stem.name + ".pdf",
            "attachment": shown.RESULTS_ATTACHMENT}


def compare(run_refs: list[str], db: str | Path, out_dir: str | Path, formats: list[str] | None = None,
            reference: str | None = None) -> list[Path]:
    """Comparison report of two or more stored runs: what differs between them; for comparable runs, paired
    differences against ``reference`` (a run reference among ``run_refs``; default the first) and rankings."""
    if len(run_refs) < 2:
        raise ConfigError("compare needs at least two runs")
    formats = _formats(formats)
    require_store(db)
    out_dir = out_folder(out_dir)
    with Store(db, read_only=True) as store:
        ids = [store.resolve_run(r) for r in run_refs]
        ref = 0
        if reference is not None:
            ref_id = store.resolve_run(reference)
            if ref_id not in ids:
                raise ConfigError(f"--reference {reference}: run {ref_id} is not one of the compared runs")
            ref = ids.index(ref_id)
        with claimed_stem(out_dir / comparison_name(ids),
                          [f".{f}" for f in formats] + [f".{name}" for name in COMPARE_TABLES]) as stem:
            html, appendix = render_compare(store, ids, reference=ref, beside=stem.name)
            tables = {name: safe_csv(table) for name, table in appendix.items()}
            written = write_files(html, stem, formats, write_text_atomic, lambda h, path: write_pdf(h, path, tables))
            # the full tables beside the report too (its print summarises them)
            return written + [write_atomic(stem.with_name(f"{stem.name}.{name}"), data)
                              for name, data in tables.items()]


def check_options(formats: list[str] | None, sign_key: str | Path | None, signer: str | None) -> None:
    """The options of :func:`build_report` that can be wrong, checked without writing anything (``report --pack``
    checks them, and makes ``out_dir`` with :func:`audit.paths.out_folder`, before it stores the packs' findings)."""
    _formats(formats)
    if sign_key:
        attest.Signer.load(sign_key, signer)


def _formats(formats: list[str] | None) -> list[str]:
    """The report formats asked for (default both), refusing any but html and pdf."""
    formats = formats or ["html", "pdf"]
    bad = [f for f in formats if f not in ("html", "pdf")]
    if bad:
        raise ConfigError(f"--format: unknown format(s) {bad}; use html and/or pdf")
    return list(dict.fromkeys(formats))


def comparison_name(run_ids: list[str]) -> str:
    """``comparison-RUN1-RUN2...``; past ~200 characters (file-name limits) the first two ids, a count and
    a hash of all ids, so the name stays unique to the set of runs."""
    name = "comparison-" + "-".join(run_ids)
    if len(name) <= 200:
        return name
    digest = hashlib.sha256("\n".join(run_ids).encode()).hexdigest()[:12]
    return f"comparison-{run_ids[0]}-{run_ids[1]}-and-{len(run_ids) - 2}-more-{digest}"


def write_files(html: str, stem: Path, formats: list[str], write_html, write_pdf) -> list[Path]:
    """Write ``html`` as ``STEM.html`` and/or ``STEM.pdf``; a write that fails leaves no ``.partial``."""
    # with_name, not with_suffix: a model called 'vendor-fr-v3.2' must not lose the run id after its dot.
    written = []
    for fmt in ("html", "pdf"):
        if fmt not in formats:
            continue
        path = stem.with_name(f"{stem.name}.{fmt}")
        try:
            written.append(write_html(path, html) if fmt == "html" else write_pdf(html, path))
        except OSError as exc:
            path.with_name(path.name + ".partial").unlink(missing_ok=True)
            raise ConfigError(f"--out {path.parent}: cannot write {path.name}: {exc.strerror or exc}") from None
    return written


def report_name(run: dict) -> str:
    """``report-MODEL-RUN``; a run of one probe names it too (``report-MODEL-membership-RUN``), so that a model's
    membership report is not taken for its battery's in a folder holding both."""
    probes = (run.get("config") or {}).get("probes") or []
    probe = f"-{_safe(probes[0])}" if len(probes) == 1 else ""
    return f"report-{_safe(run['model_name'])}{probe}-{run['run_id']}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "model"


def headline_table(run_refs: list[str], db: str | Path) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Headline measures of several runs as text cells: (column labels, [(measure, cells)])."""
    require_store(db)
    with Store(db, read_only=True) as store:
        _, labels, rows = headline_rows(store, [store.resolve_run(r) for r in run_refs])
    fmt = narrative.fmt
    text = [(r["label"], ["-" if c is None else f"{fmt(c['value'], 3)} [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"
                          for c in r["cells"]]) for r in rows]
    return labels, text
