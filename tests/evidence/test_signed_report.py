"""The signed, archival PDF: attestation page, PDF/A-3b, JSON results attached; traceability table."""

import re

from pypdf import PdfReader

from audit import api
from audit.evidence.shown import RESULTS_ATTACHMENT
from audit.evidence import fingerprint
from audit.evidence.keys import load_public
from audit.store import Store


def test_pdf_attachment_equals_the_export(run, signed, tmp_path):
    reader = PdfReader(signed["pdf"])
    attached = reader.attachments[RESULTS_ATTACHMENT]
    exported = api.export_run(run["run_id"], run["db"], tmp_path)[0].read_bytes()
    assert attached == [exported] and signed["json"].read_bytes() == exported


def test_pdf_is_pdf_a_3b(signed):
    reader = PdfReader(signed["pdf"])
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert re.search(r"pdfaid:part[^0-9]*3", xmp) and re.search(r"pdfaid:conformance[^A-Z]*B", xmp)
    assert "/OutputIntents" in reader.trailer["/Root"] and "/AF" in reader.trailer["/Root"]


def test_last_page_is_the_attestation(run, signed):
    reader = PdfReader(signed["pdf"])
    last = " ".join(reader.pages[-1].extract_text().split())
    key = fingerprint(load_public(signed["pub"]))
    with Store(run["db"]) as store:
        r = store.run(run["run_id"])
    assert "Attestation" in last and "Ada Auditor" in last and "faceaudit verify" in last
    flat = last.replace(" ", "")
    for value in (key, run["run_id"], r["model_id"], r["dataset_id"]):
        assert value in flat, value


def test_unsigned_report_has_no_attestation_page_but_carries_the_results(run, tmp_path):
    pdf = api.build_report(run["run_id"], run["db"], tmp_path, ["pdf"])[0]
    reader = PdfReader(pdf)
    assert RESULTS_ATTACHMENT in reader.attachments
    assert "How to verify this report" not in " ".join(p.extract_text() for p in reader.pages)


def test_traceability_table_maps_each_clause_to_its_evidence(run, tmp_path):
    html = api.build_report(run["run_id"], run["db"], tmp_path, ["html"])[0].read_text()
    assert "Traceability to obligations" in html
    with Store(run["db"]) as store:
        findings = store.findings(run["run_id"])
    section = html[html.index('id="traceability"'):html.index('id="system"')]
    judged = findings[findings["status"] != "not_applicable"]
    for clause in {c for refs in judged["refs"] for c in __import__("json").loads(refs)}:
        assert clause.replace("&", "&amp;") in section, clause  # (HTML-escaped)
    # every (judged rule, clause) pair is one row, with the rule's metric and status; rules not judged are listed
    # once, by reason, in the summary
    pairs = sum(len(__import__("json").loads(r)) or 1 for r in judged["refs"])
    table = section[section.index('<table class="trace '):]  # the full table (print shows a clause index)
    assert table.count("<tr data-status=") == pairs
    row = findings[findings["rule_id"] == "AIA-5-1-G-ETHNICITY"].iloc[0]
    cell = table[table.index("AIA-5-1-G-ETHNICITY"):][:900]
    assert "leakage.normalised_gain" in cell and f'status {row["status"]}' in cell  # metric named in the row
