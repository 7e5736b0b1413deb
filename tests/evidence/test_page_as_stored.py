"""``attest`` signs a report only when its pages are what faceaudit renders from the store.

Before, a report's findings were compared with the store but not the numbers it shows: an HTML page with an edited
value, or a PDF printed from one with the genuine results attached, could be signed. Now every page is rendered
again from the store with the inputs the report carries in its head (the PDF: in an attachment) and compared. Real
store, real renders (Jinja and WeasyPrint), real Ed25519 signatures.
"""

import json
import re
import subprocess
import sys
from dataclasses import replace
from markupsafe import escape
from pathlib import Path

import pytest

import audit
from audit import api
from audit.errors import NotSignable
from audit.evidence import export, shown
from audit.report.build import PAGE_DESCRIPTION, run_report
from audit.report.pdf import write_pdf
from audit.report.render import RENDERERS, PageInputs
from audit.store import Store

CLI = [sys.executable, "-c", "from audit.cli import main; main()"]
NUMBER = re.compile(r'(<td class="num">)(\d\.\d{3})(</td>)')


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    priv, pub = api.keygen(tmp_path_factory.mktemp("keys") / "auditor.key")
    return {"priv": priv, "pub": pub}


@pytest.fixture(scope="module")
def genuine(run, tmp_path_factory):
    """The run's HTML and PDF report, as ``faceaudit report`` writes them."""
    files = {p.suffix: p for p in api.build_report(run["run_id"], run["db"], tmp_path_factory.mktemp("genuine"))}
    return files[".html"], files[".pdf"]


def edited_number(text: str) -> tuple[str, str, str]:
    """``text`` with the first number of a table cell changed: (edited text, number shown, number stored)."""
    found = NUMBER.search(text)
    stored = found.group(2)
    shown_value = f"{(float(stored) + 0.5) % 1:.3f}"
    return text[:found.start(2)] + shown_value + text[found.end(2):], shown_value, stored


def refusal(run, keys, out, files) -> str:
    with pytest.raises(NotSignable) as err:
        api.attest_run(run["run_id"], run["db"], keys["priv"], out, "Ada", files)
    assert not out.exists()  # nothing written
    msg = str(err.value)
    assert "\n" not in msg and f"render it again (faceaudit report {run['run_id']})" in msg
    return msg


def test_a_genuine_report_is_signed_and_verified(run, keys, genuine, tmp_path):
    html, pdf = genuine
    _, bundle = api.attest_run(run["run_id"], run["db"], keys["priv"], tmp_path / "att", "Ada", [html, pdf])
    assert len(api.verify_bundle(bundle, [html, pdf], keys["pub"]).checked) == 3


def test_one_page_renders_to_the_same_pdf_twice(run, genuine, tmp_path):
    """What the check relies on: the inputs a report carries and the store give its page again, byte for byte (the
    PDF's attachments and its embedded fonts are dated with the page, not with the time of printing)."""
    html, pdf = genuine
    page = PageInputs.from_json(shown.page_inputs(pdf))
    assert page == PageInputs.from_json(shown.page_inputs(html)) and page.tool == audit.__version__
    with Store(run["db"], read_only=True) as store:
        again, attachments = run_report(store, run["run_id"], export.results_document(store, run["run_id"]), page)
    assert again == html.read_text(encoding="utf-8")
    assert write_pdf(again, tmp_path / "again.pdf", attachments, page.when, PAGE_DESCRIPTION).read_bytes() == \
        pdf.read_bytes()


def test_a_pdf_rendered_in_one_time_zone_is_signed_in_another(run, keys, tmp_path, monkeypatch):
    """The fonts are dated with the page's minute read as UTC, not as the machine's local time: a report printed on
    a laptop in New York and signed on a server in Tokyo is the same page."""
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        pdf = api.build_report(run["run_id"], run["db"], tmp_path / "r", ["pdf"])[0]
        monkeypatch.setenv("TZ", "Asia/Tokyo")
        time.tzset()
        _, bundle = api.attest_run(run["run_id"], run["db"], keys["priv"], tmp_path / "att", "Ada", [pdf])
    finally:
        monkeypatch.undo()
        time.tzset()
    assert len(api.verify_bundle(bundle, [pdf], keys["pub"]).checked) == 2


def test_an_html_report_with_an_edited_number_is_not_signed(run, keys, genuine, tmp_path):
    html, _ = genuine
    text, shown_value, stored = edited_number(html.read_text(encoding="utf-8"))
    forged = tmp_path / "forged" / html.name
    forged.parent.mkdir()
    forged.write_text(text, encoding="utf-8")
    msg = refusal(run, keys, tmp_path / "att", [forged])
    assert f"--report {forged}: is not the report faceaudit renders from run {run['run_id']} as stored" in msg
    shows, gives = msg.split(" where the store gives ")
    assert shown_value in shows.split("it shows ")[1] and stored in gives and "an edited report is not signed" in msg
    cli = subprocess.run(CLI + ["attest", run["run_id"], "--db", str(run["db"]), "--key", str(keys["priv"]),
                                "--report", str(forged), "--out", str(tmp_path / "cli")],
                         capture_output=True, text=True)
    assert cli.returncode != 0 and "is not the report faceaudit renders" in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1 and "Traceback" not in cli.stderr
    assert not (tmp_path / "cli").exists()


def test_a_pdf_printed_from_an_edited_page_with_the_genuine_results_attached_is_not_signed(run, keys, genuine,
                                                                                           tmp_path):
    """The forgery the attached results could not catch: the attachment is the store's, the page is not."""
    html, pdf = genuine
    page = PageInputs.from_json(shown.page_inputs(pdf))
    with Store(run["db"], read_only=True) as store:
        stored_html, attachments = run_report(store, run["run_id"], export.results_document(store, run["run_id"]),
                                              page)
    text, shown_value, stored = edited_number(stored_html)
    (tmp_path / "forged").mkdir()
    forged = write_pdf(text, tmp_path / "forged" / pdf.name, attachments, page.when, PAGE_DESCRIPTION)
    assert shown.shown_findings(forged) == shown.shown_findings(pdf)  # the findings it carries are the run's
    msg = refusal(run, keys, tmp_path / "att", [forged])
    assert re.search(r"\(page \d+: it shows .*" + re.escape(shown_value) + r".* where the store gives .*"
                     + re.escape(stored), msg), msg


def test_a_changed_plot_is_named_when_the_words_are_the_same(run, keys, genuine, tmp_path):
    html, _ = genuine
    text = html.read_text(encoding="utf-8")
    found = re.search(r'<path d="M (\d+\.\d+) ', text)
    assert found, "the report draws its plots as SVG paths"
    moved = text[:found.start(1)] + f"{float(found.group(1)) + 7:.6f}" + text[found.end(1):]
    forged = tmp_path / "forged" / html.name
    forged.parent.mkdir()
    forged.write_text(moved, encoding="utf-8")
    assert "the same words, but a plot, picture or the page's markup or encoding differs" in refusal(
        run, keys, tmp_path / "att", [forged])


def test_a_pdf_set_in_other_fonts_is_named_so(run, keys, genuine, tmp_path):
    """A machine with other fonts installed renders the same page in them (fontconfig picks what is there): the
    refusal names the fonts on each side, where it said the page count or a line that wrapped elsewhere differed."""
    _, pdf = genuine
    page = PageInputs.from_json(shown.page_inputs(pdf))
    with Store(run["db"], read_only=True) as store:
        stored_html, attachments = run_report(store, run["run_id"], export.results_document(store, run["run_id"]),
                                              page)
    font = '"DejaVu Sans", sans-serif'
    assert font in stored_html
    (tmp_path / "forged").mkdir()
    forged = write_pdf(stored_html.replace(font, '"Liberation Sans", sans-serif'), tmp_path / "forged" / pdf.name,
                       attachments, page.when, PAGE_DESCRIPTION)
    msg = refusal(run, keys, tmp_path / "att", [forged])
    assert re.search(r"\(set in [^()]*Liberation-Sans[^()]* where this machine sets it in [^()]*DejaVu-Sans[^()]*: "
                     r"rendered where other fonts are installed, or edited", msg), msg
    assert "Liberation" not in msg.split("where this machine")[1], msg


def test_a_page_that_does_not_say_what_it_was_rendered_from_is_not_signed(run, keys, genuine, tmp_path):
    """A report from before faceaudit wrote its inputs, or one whose inputs were cut out: nothing to render again."""
    html, _ = genuine
    text = html.read_text(encoding="utf-8")
    cut = re.sub(r'\n?<meta name="faceaudit-page" content="[^"]*">', "", text)
    assert cut != text
    forged = tmp_path / "old" / html.name
    forged.parent.mkdir()
    forged.write_text(cut, encoding="utf-8")
    assert "does not say what it was rendered from" in refusal(run, keys, tmp_path / "att", [forged])


def test_a_page_of_another_faceaudit_version_is_asked_to_be_rendered_again(run, keys, genuine, tmp_path):
    html, _ = genuine
    text = html.read_text(encoding="utf-8")
    assert f"&#34;tool&#34;:&#34;{audit.__version__}&#34;" in text
    older = tmp_path / "older" / html.name
    older.parent.mkdir()
    older.write_text(text.replace(f"&#34;tool&#34;:&#34;{audit.__version__}&#34;", "&#34;tool&#34;:&#34;0.1.0&#34;"),
                     encoding="utf-8")
    msg = refusal(run, keys, tmp_path / "att", [older])
    assert f"was rendered by faceaudit 0.1.0; this faceaudit ({audit.__version__}) renders other pages" in msg


def test_every_honest_way_of_rendering_is_signed(run, keys, tmp_path):
    """Faces left out, one pack shown: the inputs travel in the head and come back whole, and each page is rendered
    again exactly. A report signed when rendered (its attestation page, whose signer's name holds quotes and markup,
    comes back whole too) is not signed again: its own bundle covers it."""
    rid, db = run["run_id"], run["db"]
    no_faces = api.build_report(rid, db, tmp_path / "r", ["html"], no_faces=True)[0]
    one_pack = api.build_report(rid, db, tmp_path / "r", ["pdf"], packs=["baseline"])[0]
    assert PageInputs.from_json(shown.page_inputs(no_faces)).no_faces is True
    assert PageInputs.from_json(shown.page_inputs(one_pack)).packs == ("baseline",)
    _, bundle = api.attest_run(rid, db, keys["priv"], tmp_path / "att", "Ada", [no_faces, one_pack])
    assert len(api.verify_bundle(bundle, [no_faces, one_pack], keys["pub"]).checked) == 3

    name = 'Ada "<b>O\'Neil</b>" & co'
    signed = [p for p in api.build_report(rid, db, tmp_path / "r", sign_key=keys["priv"], signer=name)
              if p.suffix in (".html", ".pdf")]
    for report in signed:
        assert PageInputs.from_json(shown.page_inputs(report)).attestation["signer"] == name
        msg = refusal(run, keys, tmp_path / "again", [report])
        assert "ends with the attestation page of a report signed when it was rendered" in msg


def forged_inputs(run, tmp_path, name, **inputs) -> Path:
    """The run's HTML report rendered by faceaudit itself from the store, but with page inputs of the forger's
    choosing (each printed on the page)."""
    with Store(run["db"], read_only=True) as store:
        html, _ = run_report(store, run["run_id"], export.results_document(store, run["run_id"]), PageInputs(**inputs))
    out = tmp_path / "forged" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def test_inputs_that_the_page_prints_are_checked_against_the_store(run, keys, genuine, tmp_path):
    """The inputs come from the file: a forger rendering the page with inputs of their own (a data-quality file
    named as a sentence, a date before the run, someone else's attestation page) makes faceaudit draw the forgery,
    so each is checked against what the store and the run allow."""
    html, _ = genuine
    quality = PageInputs.from_json(shown.page_inputs(html)).quality_file
    assert quality and quality.endswith(".data-quality.csv")  # the shared run has records (an unreadable image)
    note = "NOTE FROM THE AUDITOR: every FAIL was reviewed and waived"
    for inputs, says in (({"quality_file": note}, "as its data-quality file where run"),
                         ({"quality_file": None}, "as its data-quality file where run"),
                         ({"quality_file": quality, "generated": "2026-01-02 09:00"},
                          "says it was generated on 2026-01-02 09:00, but run"),
                         ({"quality_file": quality, "generated": "0001-01-01 00:00"}, "says it was generated on"),
                         ({"quality_file": quality, "attestation": {"signer": "Chief Privacy Officer"}},
                          "ends with the attestation page of a report signed when it was rendered"),
                         ({"quality_file": quality, "packs": ("ALL-CHECKS-PASSED",)},  # "none applied": 0 fail
                          "which are not distinct packs applied to run"),
                         ({"quality_file": quality, "packs": ("baseline", "baseline")}, "which are not distinct"),
                         ({"quality_file": quality, "packs": ()}, "which are not distinct packs")):
        forged = forged_inputs(run, tmp_path, html.name, **inputs)
        assert says in refusal(run, keys, tmp_path / "att", [forged])
    forged = forged_inputs(run, tmp_path, html.name, quality_file=quality)  # honest inputs: signed
    api.attest_run(run["run_id"], run["db"], keys["priv"], tmp_path / "ok", "Ada", [forged])


def test_a_page_rendered_with_other_libraries_is_asked_to_be_rendered_here(run, keys, genuine, tmp_path):
    html, _ = genuine
    page = PageInputs.from_json(shown.page_inputs(html))
    other = replace(page, renderers={**page.renderers, "matplotlib": "2.0.0"})
    text = html.read_text(encoding="utf-8")
    assert str(escape(page.to_json())) in text
    text = text.replace(str(escape(page.to_json())), str(escape(other.to_json())))
    older = tmp_path / "other" / html.name
    older.parent.mkdir()
    older.write_text(text, encoding="utf-8")
    msg = refusal(run, keys, tmp_path / "att", [older])
    assert f"was rendered with matplotlib 2.0.0 (here {page.renderers['matplotlib']})" in msg


def test_a_pdf_with_anything_added_beside_its_pages_is_not_signed(run, keys, genuine, tmp_path):
    """Its pages untouched, a PDF can still say more: an outline entry, bytes appended after its end. The file is
    compared whole with the one the store renders."""
    from pypdf import PdfWriter

    _, pdf = genuine
    (tmp_path / "f").mkdir()
    outlined = tmp_path / "f" / pdf.name
    writer = PdfWriter(clone_from=str(pdf))
    writer.add_outline_item("ALL CHECKS PASSED", 0)
    writer.write(str(outlined))
    assert "is not the report faceaudit renders from run" in refusal(run, keys, tmp_path / "att", [outlined])
    appended = tmp_path / "g" / pdf.name
    appended.parent.mkdir()
    appended.write_bytes(pdf.read_bytes() + b"\n% approved\n")
    msg = refusal(run, keys, tmp_path / "att", [appended])
    assert "its pages are the store's, but the file holds more or other than them" in msg


GOOD = {"generated": "2026-12-07 10:00", "no_faces": False, "packs": None, "quality_file": None, "attestation": None,
        "tool": "0.9.0", "renderers": {name: "1.0" for name in RENDERERS}}


def test_readable_page_inputs_come_back_whole():
    page = PageInputs.from_json(json.dumps({**GOOD, "packs": ["baseline"]}))
    assert page.packs == ("baseline",) and page.generated == GOOD["generated"] and page.renderers == GOOD["renderers"]
    assert PageInputs.from_json(page.to_json()) == page


@pytest.mark.parametrize("change", [{"generated": "yesterday"}, {"generated": "2026-13-07 10:00"},
                                    {"packs": "baseline"}, {"packs": [3]}, {"no_faces": "no"}, {"quality_file": 1},
                                    {"attestation": []}, {"tool": "0.9.0; rm -rf /"}, {"tool": "x" * 41},
                                    {"renderers": {}}, {"renderers": {**GOOD["renderers"], "matplotlib": None}}])
def test_unreadable_page_inputs_are_a_value_error(change):
    with pytest.raises(ValueError, match="unreadable page inputs"):
        PageInputs.from_json(json.dumps({**GOOD, **change}))


@pytest.mark.parametrize("text", ["", "{}", "[]", "null", json.dumps({k: v for k, v in GOOD.items() if k != "tool"})])
def test_page_inputs_that_are_not_an_object_of_every_field_are_a_value_error(text):
    with pytest.raises(ValueError, match="unreadable page inputs"):
        PageInputs.from_json(text)


def test_the_results_a_report_carries_are_the_stores_byte_for_byte(run, keys, genuine, tmp_path):
    """Parsed, a results document can say one thing to Python and another to a reader (a key given twice: the last
    wins), or carry words of its own where only its numbers were compared (a finding's message, a time that is not
    one). Only the bytes a fresh export writes are signed, when each finding's evaluation time is an earlier one."""
    rid = run["run_id"]
    exported = api.export_run(rid, run["db"], tmp_path / "export")[0]
    data = exported.read_bytes()
    doc = json.loads(data)
    first_fail = next(i for i, f in enumerate(doc["findings"]) if f["status"] == "fail")
    reworded = json.loads(data)
    reworded["findings"][first_fail]["message"] = "reviewed and waived: APPROVED"
    later = json.loads(data)
    later["findings"][0]["evaluated_at"] = {"note": "FAIL reviewed and accepted"}
    twice = data.replace(b'{\n "config"', b'{\n "findings": [],\n "config"', 1)
    assert twice != data and json.loads(twice) == doc  # Python reads the real findings, a reader meets none first
    for name, body in (("reworded", export.dumps(reworded)), ("later", export.dumps(later)), ("twice", twice),
                       ("spaced", json.dumps(doc).encode())):
        forged = tmp_path / name / exported.name
        forged.parent.mkdir()
        forged.write_bytes(body)
        with pytest.raises(NotSignable, match="the results it carries are not the run's as stored, byte for byte"):
            api.attest_run(rid, run["db"], keys["priv"], tmp_path / "att", "Ada", [forged])

    _, pdf = genuine  # the same in a PDF: its pages the store's, its attachment not
    page = PageInputs.from_json(shown.page_inputs(pdf))
    with Store(run["db"], read_only=True) as store:
        html, attachments = run_report(store, rid, export.results_document(store, rid), page)
    attachments[shown.RESULTS_ATTACHMENT] = twice
    (tmp_path / "pdf").mkdir()
    forged = write_pdf(html, tmp_path / "pdf" / pdf.name, attachments, page.when, PAGE_DESCRIPTION)
    assert "the results it carries are not the run's as stored" in refusal(run, keys, tmp_path / "att", [forged])


def _pdf(tmp_path, name, fan=0, filt=None):
    """A one-page PDF: with ``fan``, its resources draw one form ``fan`` times whose resources are the page's own (a
    loop); with ``filt``, a content stream under that filter."""
    import io

    from pypdf import PdfWriter
    from pypdf.generic import DictionaryObject, NameObject, StreamObject

    w = PdfWriter()
    page = w.add_blank_page(100, 100)
    if fan:
        font = w._add_object(DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                                               NameObject("/BaseFont"): NameObject("/ABCDEF+Looping")}))
        res = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        res_ref = w._add_object(res)
        form = StreamObject()
        form[NameObject("/Subtype")] = NameObject("/Form")
        form[NameObject("/Resources")] = res_ref
        form_ref = w._add_object(form)
        res[NameObject("/XObject")] = DictionaryObject({NameObject(f"/X{i}"): form_ref for i in range(fan)})
        page[NameObject("/Resources")] = res_ref
    if filt:
        stream = StreamObject()
        stream._data = b"xx"
        stream[NameObject("/Filter")] = NameObject(filt)
        page[NameObject("/Contents")] = w._add_object(stream)
    out = io.BytesIO()
    w.write(out)
    (tmp_path / name).write_bytes(out.getvalue())
    return tmp_path / name


def test_a_damaged_or_looping_pdf_gets_a_one_line_answer(tmp_path):
    """What a forged PDF may hold beside its pages' words: a stream under a filter pypdf does not know (it raised
    NotImplementedError through the check, a traceback), or forms whose resources draw each other (the font lookup
    followed every path: N^5 visits, hours for a 2 KB file); each resources dictionary is now read once."""
    from audit.report.signing import page_difference

    blank = _pdf(tmp_path, "blank.pdf")
    assert page_difference(_pdf(tmp_path, "filter.pdf", filt="/Foo"), blank) == \
        "its pages cannot be read (NotImplementedError)"
    said = page_difference(_pdf(tmp_path, "loop.pdf", fan=200), blank)
    assert said.startswith("set in Looping where this machine sets it in no font: rendered where other fonts"), said


def test_the_verdicts_a_forged_report_shows_are_quoted_bounded(run, keys, genuine, tmp_path):
    """A results JSON whose finding names a rule of 3,000 characters with a newline: the refusal that quotes it
    stays one short line."""
    html, _ = genuine
    with Store(run["db"], read_only=True) as store:
        doc = export.results_document(store, run["run_id"])
    doc["findings"][0]["rule_id"] = "A" * 3000 + "\n[bold]WAIVED[/bold]"
    doc["findings"][0]["status"] = "pass" if doc["findings"][0]["status"] != "pass" else "fail"
    forged = tmp_path / "results.json"
    forged.write_text(json.dumps(doc))
    with pytest.raises(NotSignable) as err:
        api.attest_run(run["run_id"], run["db"], keys["priv"], tmp_path / "att", "Ada", [forged])
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 800 and "(cut)" in msg and "AAAA" in msg, msg
