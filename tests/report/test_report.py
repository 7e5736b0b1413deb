"""Reports render from a real store; PDFs are real files read back with pypdf."""

import http.server
import threading

import pytest
from pypdf import PdfReader

from audit import api
from audit.config import AuditConfig
from audit.report.pdf import write_pdf
from audit.store import Store
from tests.builders import make_onnx


@pytest.fixture(scope="module")
def audited(tmp_path_factory, small_data):
    """A tiny model whose name is a script tag, audited on the small synthetic set."""
    root = tmp_path_factory.mktemp("rep")
    model = make_onnx(root / "tiny.onnx")
    (root / "tiny.profile.yaml").write_text(
        "name: <script>alert(1)</script>\nkind: embedding\nembedding_output: embedding\n"
        "input: {name: input, size: [112, 112], layout: NCHW, color: RGB, mean: [127.5, 127.5, 127.5], "
        "std: [127.5, 127.5, 127.5]}\n")
    db = root / "store.duckdb"
    cfg = AuditConfig(model=model, data=str(small_data), conditions=["clean", "mask:surgical"], bootstrap=50,
                      mlp_epochs=20, folds=3)
    run_id = api.run_audit(cfg, db)
    api.evaluate_rules(run_id, db)
    return root, db, run_id


def test_vendor_strings_are_escaped(audited):
    root, db, run_id = audited
    html = api.build_report(run_id, db, root / "out", ["html"])[0].read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_html_has_every_section(audited):
    root, db, run_id = audited
    html = api.build_report(run_id, db, root / "out", ["html"])[0].read_text()
    for section in ("Executive summary", "System under test", "Data quality", "Attribute leakage",
                    "Identity under occlusion", "Limitations", "Reproducibility appendix", "<svg"):
        assert section in html, section
    assert "not applicable" in html  # inversion rules cannot be judged without that probe
    # Figures label their axes in plain text: with mathtext off, matplotlib's default log-axis labels would print
    # as '$\mathdefault{10^{-3}}$' (the DET plot did until 2026-12-04).
    assert "mathdefault" not in html and "$" not in "".join(html.split("<svg")[1:])


def test_pdf_pages_and_findings_text(audited):
    root, db, run_id = audited
    pdf = api.build_report(run_id, db, root / "out", ["pdf"])[0]
    reader = PdfReader(pdf)
    assert len(reader.pages) >= 5
    text = " ".join(p.extract_text() for p in reader.pages)
    assert "SANITY-CONTROL-AT-CHANCE" in text and "LEAK-SEX-CLEAN" in text
    assert f"page 1 of {len(reader.pages)}" in text and run_id in text
    fonts = {str(f.get("/BaseFont")) for p in reader.pages for f in (p["/Resources"].get("/Font") or {}).values()
             for f in [f.get_object()]}
    assert any("DejaVu" in f for f in fonts)
    embedded = [f for p in reader.pages for f in (p["/Resources"].get("/Font") or {}).values()
                if "/FontFile2" in str(f.get_object().get("/DescendantFonts", [{}])[0].get_object()
                                       .get("/FontDescriptor", {}).get_object().keys())
                or "/FontFile2" in str(f.get_object().get("/FontDescriptor", {}))]
    assert embedded, "fonts must be embedded"


def test_no_faces_leaves_images_out(audited):
    root, db, run_id = audited
    with_faces = api.build_report(run_id, db, root / "a", ["html"])[0].read_text()
    without = api.build_report(run_id, db, root / "b", ["html"], no_faces=True)[0].read_text()
    assert "data:image/png;base64" in with_faces and "data:image/png;base64" not in without


def test_comparison_report(audited, tmp_path):
    root, db, run_id = audited
    cfg = AuditConfig(model=root / "tiny.onnx", data=str(root.parent / "missing"), probes=["leakage"])
    # A second run of the same model with another seed gives the second column.
    cfg = cfg.model_copy(update={"data": api.show_run(run_id, db)["run"]["dataset_source"].removesuffix(
        "/manifest.csv"), "seed": 1, "conditions": ["clean"], "bootstrap": 50, "mlp_epochs": 20})
    other = api.run_audit(cfg, db)
    api.evaluate_rules(other, db)
    html_path, pdf_path = api.compare([run_id, other], db, tmp_path)[:2]  # (and any tables beside them)
    html = html_path.read_text()
    assert run_id in html and other in html and "Findings side by side" in html
    assert len(PdfReader(pdf_path).pages) >= 1


def test_pdf_rendering_makes_no_network_request(tmp_path):
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    html = (f'<html><head><link rel="stylesheet" href="{url}/style.css"></head><body><h1>x</h1>'
            f'<img src="{url}/logo.png"><p style="background: url({url}/bg.png)">y</p></body></html>')
    try:
        write_pdf(html, tmp_path / "x.pdf")
    finally:
        server.shutdown()
    assert hits == []
    assert (tmp_path / "x.pdf").stat().st_size > 0


def test_dataset_section_states_what_the_run_used(audited):
    root, db, run_id = audited
    html = api.build_report(run_id, db, root / "used", ["html"])[0].read_text()
    assert "this run used 160 images of 40 people" in html
    assert "embedded synthetic set" in html and "negative control" in html
    assert "through the Python API" in html  # the fixture set bootstrap/folds explicitly


@pytest.mark.slow
def test_rerun_command_in_the_appendix_reproduces_the_run(tmp_path, small_data):
    """The command printed in the reproducibility appendix, run as printed, gives the same numbers."""
    import html as html_mod
    import re
    import shlex

    from typer.testing import CliRunner

    from audit.cli import app
    from audit.store import Store

    model = make_onnx(tmp_path / "m.onnx")
    db = tmp_path / "s.duckdb"
    cfg = AuditConfig(model=model, data=str(small_data), probes=["leakage"], conditions=["clean", "mask:n95"],
                      attributes=["sex"], seed=3, parity=False)
    first = api.run_audit(cfg, db)
    page = api.build_report(first, db, tmp_path / "out", ["html"])[0].read_text()
    command = html_mod.unescape(re.search(r"Re-run with <span class=\"mono\">(.*?)</span>", page).group(1))
    args = shlex.split(command)
    assert args[:2] == ["faceaudit", "run"] and "through the Python API" not in page
    result = CliRunner().invoke(app, args[1:] + ["--db", str(db), "--pack", "baseline"])
    assert result.exit_code == 0, result.output
    with Store(db) as s:
        second = s.resolve_run("latest")
        assert second != first
        a, b = (s.metrics(r).drop(columns=["run_id"]) for r in (first, second))
    assert a.equals(b)


def test_report_states_the_image_budget_when_it_cut_the_dataset(tmp_path, small_data):
    model = make_onnx(tmp_path / "m.onnx")
    db = tmp_path / "s.duckdb"
    cfg = AuditConfig(model=model, data=str(small_data), probes=["leakage"], conditions=["clean"],
                      attributes=["sex"], parity=False, bootstrap=30, max_images=100)
    run_id = api.run_audit(cfg, db)
    page = api.build_report(run_id, db, tmp_path / "out", ["html"])[0].read_text()
    # 40 people x 4 images, budget 100 images: 25 whole people.
    assert "this run used 100 images of 25 people" in page
    assert "budget is 100 images, whole persons drawn with the run" in page


def test_the_report_says_what_precision_the_attacks_ran_in_and_the_rerun_command_fixes_it():
    from audit.report.render import _inversion_convergence, rerun_command

    rec = {"steps": 20, "cap": 20, "stopped_by": "cap", "min_delta": 0.005, "patience": 5, "curve": [0.5, 0.4]}
    half = _inversion_convergence({"convergence": rec, "precision": "bfloat16"})["convergence"]
    full = _inversion_convergence({"convergence": rec, "precision": "float32"})["convergence"]
    assert any("mixed precision" in line and "measured in float32" in line for line in half)
    assert not any("precision" in line for line in full)
    config = {"model": "m.onnx", "data": "sample", "probes": ["cloak"], "conditions": ["clean"], "preset": "quick",
              "seed": 0, "attack_precision": "auto"}
    # 'auto' is printed as what it resolved to (another machine may resolve it differently); older runs: float32
    assert "--attack-precision bfloat16" in rerun_command({"config": {**config,
                                                                      "resolved": {"attack_precision": "bfloat16"}}})[0]
    assert "--attack-precision float32" in rerun_command({"config": config})[0]
    # the torch threads the run used (another machine's default may differ); older runs name none
    assert rerun_command({"config": config, "environment": {"compute": {"attack_threads": 3}}})[0].endswith(
        "--attack-precision float32 --attack-threads 3")
    assert "--attack-threads" not in rerun_command({"config": config})[0]


def test_the_report_says_how_the_decoder_of_masked_templates_stopped():
    """A review of the change: the decoder tuned per mask (0.11.0) stops at the preset's cap in quick, and the report
    said nothing of it; it says so now, and which masks kept the clean decoder."""
    from audit.report.render import _inversion_convergence

    rec = {"steps": 3, "cap": 3, "stopped_by": "cap", "min_delta": 0.005, "patience": 2, "curve": [0.5, 0.4, 0.3]}
    lines = _inversion_convergence({"convergence": rec, "masked": {
        "mask:surgical": {"convergence": rec, "kept_epoch": 3},
        "mask:n95": {"convergence": {**rec, "stopped_by": "plateau"}, "kept_epoch": 0}}})["convergence"]
    said = next(line for line in lines if line.startswith("For masked templates"))
    assert said == ("For masked templates the decoder was tuned on the auxiliary faces' templates under each mask, for "
                    "at most 3 epochs: mask:surgical stopped at that cap, so a larger preset may strengthen the attack; "
                    "for mask:n95 tuning did not help and the clean decoder was kept.")


def test_findings_show_the_measured_value_before_the_judged_end(audited):
    """A rule judged at an end of the interval shows the value it picked with its interval, then 'judged: <end>
    (lower end)': the judged end is never printed as if it were the measurement (it was, until 2026-12-05)."""
    import html as html_mod
    import json
    import re

    from audit.report.narrative import fmt
    from audit.store import Store

    root, db, run_id = audited
    page = api.build_report(run_id, db, root / "out", ["html"])[0].read_text()
    with Store(db, read_only=True) as store:
        findings = store.findings(run_id)
    judged = findings[(findings["status"] != "not_applicable") & (findings["judged"] == "ci_low")]
    assert len(judged), "the run must have a rule judged at the lower end"
    table = page[page.index('id="findings-table"'):]
    cells = {re.search(r'class="mono rule-id">([^<]+)<', row).group(1): row
             for row in re.findall(r"<tr data-status.*?</tr>", table, re.S)}
    for f in judged.itertuples():
        loc = json.loads(f.location)
        text = " ".join(html_mod.unescape(re.sub(r"<[^>]+>", " ", cells[f.rule_id])).split())
        assert f"{fmt(loc['value'], 3)} {fmt(loc['ci_low'], 3)} – {fmt(loc['ci_high'], 3)}" in text, (f.rule_id, text)
        assert f"judged: {fmt(f.observed, 3)} (lower end)" in text, (f.rule_id, text)
        assert loc["value"] != f.observed  # the two numbers differ, so the test tells them apart


def test_a_pack_given_as_a_file_shows_its_findings_and_signing_is_checked_first(tmp_path, small_data):
    """Findings are stored by pack id: ``--pack rules/baseline.yaml`` must show baseline's verdicts, as ``--pack
    baseline`` does, not "no rule pack has been applied". A run that cannot be signed is refused before any
    report file is written."""
    import re

    from audit.errors import FaceAuditError
    from audit.resources import rules_dir

    model = make_onnx(tmp_path / "m.onnx")
    db = tmp_path / "s.duckdb"
    cfg = AuditConfig(model=model, data=str(small_data), probes=["leakage", "identity"], conditions=["clean"],
                      attributes=["sex"], parity=False, bootstrap=30, mlp_epochs=5, folds=3)
    run_id = api.run_audit(cfg, db)
    priv, _ = api.keygen(tmp_path / "k")
    with pytest.raises(FaceAuditError, match="has no findings"):
        api.build_report(run_id, db, tmp_path / "unsigned", ["html"], sign_key=priv, signer="Ada")
    assert not (tmp_path / "unsigned").exists()
    api.evaluate_rules(run_id, db, ["baseline"])
    pages = {ref: api.build_report(run_id, db, tmp_path / name, ["html"], packs=[ref])[0].read_text()
             for name, ref in (("id", "baseline"), ("file", str(rules_dir() / "baseline.yaml")))}
    ids = {ref: sorted(set(re.findall(r"\b(?:LEAK|ID|SANITY|INV|CLOAK|DEMO|MEMB)-[A-Z0-9-]+\b", page)))
           for ref, page in pages.items()}
    assert ids["baseline"] and ids[str(rules_dir() / "baseline.yaml")] == ids["baseline"]
    assert "No rule pack has been applied" not in pages[str(rules_dir() / "baseline.yaml")]
    # re-applying packs with an option that is then refused leaves the store as it was (a report signed earlier
    # still matches the run's findings)
    with Store(db, read_only=True) as s:
        before = s.findings(run_id)[["pack", "rule_id", "status", "evaluated_at"]]
    nothing = tmp_path / "nothing.yaml"  # a pack that judges nothing on this run: signing it is refused
    nothing.write_text("pack: nothing\nversion: '1'\nrules:\n  - {id: N1, title: t, probe: inversion, metric: "
                       "sar_type1, fail_if: '> 0.5'}\n")
    for bad, packs in (({"formats": ["docx"]}, ["eu-ai-act"]), ({"sign_key": tmp_path / "nokey"}, ["eu-ai-act"]),
                       ({"out_dir": tmp_path / "k.pub"}, ["eu-ai-act"]),
                       ({"out_dir": tmp_path / "k.pub" / "sub"}, ["eu-ai-act"]),
                       ({"sign_key": priv}, [str(nothing)])):
        kw = {"out_dir": tmp_path / "r2", "formats": ["html"], **bad}
        with pytest.raises(FaceAuditError):
            api.build_report(run_id, db, kw.pop("out_dir"), kw.pop("formats"), packs=packs,
                             apply_packs=True, signer="Ada", **kw)
    with Store(db, read_only=True) as s:
        after = s.findings(run_id)[["pack", "rule_id", "status", "evaluated_at"]]
    assert after.equals(before) and not {"eu-ai-act", "nothing"} & set(after["pack"])
    api.build_report(run_id, db, tmp_path / "r3", ["html"], packs=["eu-ai-act"], apply_packs=True)
    with Store(db, read_only=True) as s:
        assert "eu-ai-act" in set(s.findings(run_id)["pack"])


def test_a_run_another_version_computed_says_so_on_top_and_its_pair_counts_are_named_ordered(audited, tmp_path):
    """A review of the report: a run computed before 0.6.0 showed its ordered person-pair counts (each pair counted
    in both directions) under "pairs of people" beside a rule of 30 stated on distinct pairs, and no page said which
    faceaudit computed or judged the numbers. The appendix names every version; another minor version's run says on
    top that it is no verdict under this one, and its identity counts are named as ordered."""
    import json
    import shutil

    import audit

    root, db, run_id = audited
    html = api.build_report(run_id, db, tmp_path / "now", ["html"])[0].read_text()
    assert (f"numbers computed by faceaudit {audit.__version__}; findings judged by {audit.__version__}; this report "
            f"rendered by {audit.__version__}") in html
    assert "not by this version" not in html and "ordered pairs of people" not in html
    old = shutil.copy(db, tmp_path / "old.duckdb")
    with Store(old) as s:
        env = {**s.run(run_id)["environment"], "faceaudit": "0.5.1"}
        s._rows("UPDATE runs SET environment = ? WHERE run_id = ?", [json.dumps(env), run_id])
    html = api.build_report(run_id, old, tmp_path / "old", ["html"])[0].read_text()
    summary = html[html.index('id="summary"'):html.index('id="traceability"')]
    assert f"Computed by faceaudit 0.5.1, not by this version ({audit.__version__}).</strong>" in summary
    assert "it cannot be signed and its gate stays closed" in summary
    assert "ordered pairs of people (faceaudit 0.5.1 counted each pair of people in both directions" in html
