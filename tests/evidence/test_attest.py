"""Keys, signed in-toto statements and verification: every tampered part is caught, in one line."""

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from audit import api
from audit.errors import FaceAuditError
from audit.evidence import VerificationError
from audit.evidence.attest import PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, pae
from audit.evidence.keys import KeyFileError, load_public
from audit.store import Store


def statement_of(bundle_path):
    env = json.loads(bundle_path.read_text())["dsseEnvelope"]
    return json.loads(base64.b64decode(env["payload"]))


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path):
    priv, pub = api.keygen(tmp_path / "k")
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in priv.read_bytes() and b"PUBLIC KEY" in pub.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        api.keygen(tmp_path / "k")


def test_statement_is_in_toto_v1_test_result_about_model_dataset_and_files(run, signed):
    stmt = statement_of(signed["bundle"])
    assert stmt["_type"] == STATEMENT_TYPE and stmt["predicateType"] == PREDICATE_TYPE
    with Store(run["db"]) as store:
        r, findings = store.run(run["run_id"]), store.findings(run["run_id"])
    digests = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
    assert digests["vendor.onnx"] == r["model_id"] == hashlib.sha256(run["model"].read_bytes()).hexdigest()
    assert r["dataset_id"] in digests.values()
    for key in ("html", "pdf", "json"):
        assert digests[signed[key].name] == hashlib.sha256(signed[key].read_bytes()).hexdigest()
    pred = stmt["predicate"]
    expected = {s: sorted(f"{f.pack}/{f.rule_id}" for f in findings.itertuples() if f.status == s)
                for s in ("pass", "warn", "fail")}
    assert (pred["passedTests"], pred["warnedTests"], pred["failedTests"]) == \
        (expected["pass"], expected["warn"], expected["fail"])
    assert pred["result"] == ("FAILED" if expected["fail"] else "WARNED" if expected["warn"] else "PASSED")
    cfg = pred["configuration"][0]
    assert json.loads(base64.b64decode(cfg["content"]))["seed"] == 0
    assert cfg["annotations"]["signer"] == "Ada Auditor" and cfg["annotations"]["run_id"] == run["run_id"]
    assert any(c["name"].startswith("rule-pack:baseline@") for c in pred["configuration"])


def test_signature_is_ed25519_over_the_dsse_pae(signed):
    env = json.loads(signed["bundle"].read_text())["dsseEnvelope"]
    payload, sig = base64.b64decode(env["payload"]), base64.b64decode(env["signatures"][0]["sig"])
    load_public(signed["pub"]).verify(sig, pae(PAYLOAD_TYPE, payload))  # raises if not


def test_verify_accepts_the_untouched_files(signed):
    res = api.verify_bundle(signed["bundle"], [signed["pdf"], signed["html"], signed["json"]], signed["pub"])
    # the three given files, and every other signed file beside the bundle (the data-quality CSV when the
    # dataset has data-quality records)
    extra = signed["quality"] is not None
    assert res.trusted_key and len(res.checked) == 3 + extra
    # without --report, every evidence file found beside the bundle is checked
    assert len(api.verify_bundle(signed["bundle"], None, signed["pub"]).checked) == 3 + extra


def test_verify_refuses_a_resaved_pdf(signed, tmp_path):
    from pypdf import PdfReader, PdfWriter

    resaved = tmp_path / signed["pdf"].name
    writer = PdfWriter(clone_from=PdfReader(signed["pdf"]))
    with open(resaved, "wb") as fh:
        writer.write(fh)
    with pytest.raises(VerificationError, match="differs from the signed statement"):
        api.verify_bundle(signed["bundle"], [resaved], signed["pub"])


def test_verify_refuses_altered_json_and_uncovered_files(signed, tmp_path):
    altered = tmp_path / signed["json"].name
    altered.write_bytes(signed["json"].read_bytes().replace(b'"status": "fail"', b'"status": "pass"'))
    assert altered.read_bytes() != signed["json"].read_bytes()
    with pytest.raises(VerificationError, match="changed after signing"):
        api.verify_bundle(signed["bundle"], [altered], signed["pub"])
    other = tmp_path / "other.pdf"
    other.write_bytes(b"%PDF-1.7 another report")
    with pytest.raises(VerificationError, match="not covered"):
        api.verify_bundle(signed["bundle"], [other], signed["pub"])


def test_verify_refuses_an_edited_statement(signed, tmp_path):
    bundle = json.loads(signed["bundle"].read_text())
    stmt = statement_of(signed["bundle"])
    stmt["predicate"]["result"] = "PASSED"
    stmt["predicate"]["failedTests"] = []
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    edited = tmp_path / "edited.intoto.json"
    edited.write_text(json.dumps(bundle))
    with pytest.raises(VerificationError, match="altered after signing"):
        api.verify_bundle(edited, [signed["pdf"]], signed["pub"])


def test_verify_refuses_another_key_even_one_swapped_into_the_bundle(signed, tmp_path):
    _, other_pub = api.keygen(tmp_path / "mallory.key")
    with pytest.raises(VerificationError, match="signature does not verify"):
        api.verify_bundle(signed["bundle"], [signed["pdf"]], other_pub)
    # an attacker re-signs an edited statement with their own key and embeds that key: only --pubkey catches it
    from audit.evidence.attest import Signer, sign, write_bundle
    from audit.evidence.keys import load_private

    mallory = Signer(load_private(tmp_path / "mallory.key"), "Mallory")
    for key in ("html", "json", "quality"):  # verify checks every signed file: the others lie beside the forgery
        if signed[key] is not None:
            (tmp_path / signed[key].name).write_bytes(signed[key].read_bytes())
    forged = write_bundle(sign(statement_of(signed["bundle"]), mallory), tmp_path / "forged.intoto.json")
    assert not api.verify_bundle(forged, [signed["pdf"]]).trusted_key
    with pytest.raises(VerificationError, match="signature does not verify"):
        api.verify_bundle(forged, [signed["pdf"]], signed["pub"])


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"dsseEnvelope": {"signatures": []}}', b"\xff\xfe"])
def test_verify_refuses_a_broken_bundle(signed, tmp_path, content):
    bad = tmp_path / "bad.intoto.json"
    bad.write_bytes(content)
    with pytest.raises(VerificationError, match="not a faceaudit attestation bundle"):
        api.verify_bundle(bad, [signed["pdf"]], signed["pub"])


def test_bad_keys_are_one_line_errors(run, tmp_path):
    priv, pub = api.keygen(tmp_path / "k")
    os.chmod(priv, 0o644)
    with pytest.raises(KeyFileError, match="readable by other users.*chmod 600"):
        api.attest_run(run["run_id"], run["db"], priv, tmp_path / "out")
    corrupt = tmp_path / "corrupt.key"
    corrupt.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    os.chmod(corrupt, 0o600)
    with pytest.raises(KeyFileError, match="not a usable PEM private key"):
        api.attest_run(run["run_id"], run["db"], corrupt, tmp_path / "out")
    rsa_key = tmp_path / "rsa.key"
    rsa_key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(rsa_key, 0o600)
    with pytest.raises(KeyFileError, match="not Ed25519"):
        api.attest_run(run["run_id"], run["db"], rsa_key, tmp_path / "out")
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        api.verify_bundle(tmp_path / "x", None, priv)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_attest_covers_given_reports_and_cli_exit_codes(run, tmp_path):
    priv, pub = api.keygen(tmp_path / "k")
    report = api.build_report(run["run_id"], run["db"], tmp_path / "r", ["html"])[0]
    results, bundle = api.attest_run(run["run_id"], run["db"], priv, tmp_path / "att", "Ada", [report])
    assert {n for _, n in api.verify_bundle(bundle, [report, results], pub).checked} == {report.name, results.name}
    cli = [sys.executable, "-m", "audit.cli"]
    ok = subprocess.run(cli + ["verify", str(bundle), "--report", str(report), "--pubkey", str(pub)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "OK: signature valid by the given public key" in ok.stdout
    # what the result is about, before anyone trusts it (a review: verify named no model, run, signer or pack)
    with Store(run["db"], read_only=True) as store:
        stored = store.run(run["run_id"])
    assert f"  model: {Path(stored['model_path']).name} (sha256 {stored['model_id'][:16]}...)" in ok.stdout
    assert f"  run {run['run_id']}, preset quick" in ok.stdout and "signed by Ada at " in ok.stdout
    assert f"computed by faceaudit {stored['environment']['faceaudit']}" in ok.stdout
    assert "result-affecting settings: sha256 " in ok.stdout
    assert "judged under rule-pack:baseline@" in ok.stdout and "failed," in ok.stdout
    report.write_text(report.read_text() + " ")
    bad = subprocess.run(cli + ["verify", str(bundle), "--report", str(report), "--pubkey", str(pub)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "changed after signing" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_missing_bundle_is_an_input_error(tmp_path):
    with pytest.raises(FaceAuditError, match="no such attestation bundle"):
        api.verify_bundle(tmp_path / "none.intoto.json")


def test_verify_names_a_pdf_whose_results_attachment_was_removed(signed, tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(signed["pdf"]).pages:
        writer.add_page(page)  # pages only: the embedded results are left behind
    stripped = tmp_path / signed["pdf"].name
    with open(stripped, "wb") as fh:
        writer.write(fh)
    with pytest.raises(VerificationError, match="embedded results .* are missing"):
        api.verify_bundle(signed["bundle"], [stripped], signed["pub"])


def test_a_second_attestation_never_replaces_the_first(run, tmp_path):
    priv, pub = api.keygen(tmp_path / "k")
    first = api.attest_run(run["run_id"], run["db"], priv, tmp_path / "att", "Ada")
    second = api.attest_run(run["run_id"], run["db"], priv, tmp_path / "att", "Ada")
    assert {p.name for p in first}.isdisjoint({p.name for p in second})
    assert second[1].name == f"attestation-{run['run_id']}-2.intoto.json"
    for results, bundle in (first, second):
        assert api.verify_bundle(bundle, [results], pub).checked


def test_the_statement_names_settings_without_paths_and_the_faceaudit_that_computed(run):
    """The run configuration's digest covers the paths the files were given by, so a faithful re-run elsewhere signs
    another digest; the statement also names the result-affecting settings without them (model and data by content)
    and the faceaudit that computed the numbers, which may be older than the one signing (a note of the last session)."""
    import copy
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.evidence.attest import Signer, statement

    with Store(run["db"], read_only=True) as store:
        stored, findings = store.run(run["run_id"]), store.findings(run["run_id"])
    moved = copy.deepcopy(stored)
    moved["config"]["model"] = "/elsewhere/" + Path(str(stored["config"]["model"])).name
    import audit

    patch = ".".join(audit.__version__.split(".")[:2]) + ".0-older"  # another patch release of this minor version
    moved["environment"]["faceaudit"] = patch
    signer = Signer(Ed25519PrivateKey.generate(), "t")

    def notes(r):
        c = statement(r, findings, [], signer)["predicate"]["configuration"][0]
        return c["digest"]["sha256"], c["annotations"]

    (here, a), (there, b) = notes(stored), notes(moved)
    assert here != there and a["result_settings_sha256"] == b["result_settings_sha256"]
    assert a["computed_by"] == f"faceaudit {stored['environment']['faceaudit']}"
    assert b["computed_by"] == f"faceaudit {patch}"
    other = copy.deepcopy(stored)
    other["config"]["seed"] = 99
    assert notes(other)[1]["result_settings_sha256"] != a["result_settings_sha256"]


def test_what_a_statement_vouches_for_counts_the_rules_not_judged(run, signed):
    """A review of the evidence: a statement over one probe whose one rule passed read "result PASSED ... 0 failed,
    0 warned, 1 passed", the rules not judged (their probe did not run) visible only inside the signed payload. The
    lines a person reads before trusting the result count them."""
    from audit.evidence.attest import describe

    stmt = statement_of(signed["bundle"])
    with Store(run["db"]) as store:
        findings = store.findings(run["run_id"])
    unjudged = int((findings["status"] == "not_applicable").sum())
    assert unjudged  # the fixture's run judges some rules, not all
    last = describe(stmt)[-1]
    assert last.startswith("rules: ") and f", {unjudged} not judged (their probe did not run" in last, last
