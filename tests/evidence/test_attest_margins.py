"""Signed evidence at its margins.

Two report files of one name: ``attest`` refuses them (a signed file is named by its file name alone), and a bundle
that lists one name twice is verified only with both files. A report made from findings that have since been
replaced (the user's rule pack was edited and applied again): ``attest`` refuses it, and ``verify`` catches one
that was signed anyway. Real stores, real reports, real Ed25519 signatures throughout.
"""

import hashlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from audit import api
from audit.errors import ConfigError
from audit.evidence import VerificationError
from audit.errors import NotSignable
from audit.evidence.attest import Signer, sign, statement, write_bundle
from audit.evidence.shown import findings_digest
from audit.evidence.export import results_document
from audit.store import Store

CLI = [sys.executable, "-c", "from audit.cli import main; main()"]
BASELINE = "rules/baseline.yaml"


@pytest.fixture
def keys(tmp_path):
    priv, pub = api.keygen(tmp_path / "auditor.key")
    return {"priv": priv, "pub": pub}


@pytest.fixture
def db(run, tmp_path):
    """A copy of the shared store: these tests apply packs to the run."""
    copy = tmp_path / "store.duckdb"
    shutil.copy(run["db"], copy)
    return copy


def write_pack(path, fail_if: float | None = None):
    """The user's own pack (``my-policy``, the baseline's rules): as shipped, or with every threshold moved out of
    reach to ``fail_if`` (nothing can warn or fail)."""
    from pathlib import Path

    pack = yaml.safe_load((Path(__file__).parents[2] / BASELINE).read_text())
    pack["pack"] = "my-policy"
    if fail_if is not None:
        for rule in pack["rules"]:
            rule.pop("warn_if", None)
            rule["fail_if"] = f"> {fail_if:g}" if ">" in rule["fail_if"] else f"< -{fail_if:g}"
    path.write_text(yaml.safe_dump(pack))
    return str(path)


def my_policy(db, run_id) -> dict:
    with Store(db, read_only=True) as store:
        f = store.findings(run_id)
    return dict(zip(f.loc[f["pack"] == "my-policy", "rule_id"], f.loc[f["pack"] == "my-policy", "status"]))


def current_digest(db, run_id) -> str:
    with Store(db, read_only=True) as store:
        return findings_digest(results_document(store, run_id)["findings"])


def with_digest(report, digest, out):
    """``report`` with ``digest`` in the meta tag of its head (``digest`` None: without one, as a report from before
    the renderer wrote it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = re.sub(r'\n?<meta name="faceaudit-findings"[^>]*>', "", report.read_text(encoding="utf-8"))
    assert '<meta charset="utf-8">' in text
    if digest is not None:
        text = text.replace('<meta charset="utf-8">',
                            f'<meta charset="utf-8">\n<meta name="faceaudit-findings" content="sha256:{digest}">', 1)
    out.write_text(text, encoding="utf-8")
    return out


def html_and_pdf(run_id, db, out):
    files = {p.suffix: p for p in api.build_report(run_id, db, out)}  # (and the data-quality list beside them)
    return files[".html"], files[".pdf"]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- two files of one name
def two_reports_of_one_name(run, db, tmp_path):
    a = api.build_report(run["run_id"], db, tmp_path / "a", ["html"])[0]
    b = api.build_report(run["run_id"], db, tmp_path / "b", ["html"], no_faces=True)[0]
    assert a.name == b.name and a.read_bytes() != b.read_bytes()
    return a, b


def test_attest_refuses_two_report_files_of_one_name_naming_both(run, keys, tmp_path):
    a, b = two_reports_of_one_name(run, run["db"], tmp_path)
    with pytest.raises(ConfigError) as err:
        api.attest_run(run["run_id"], run["db"], keys["priv"], tmp_path / "att", "Ada", [a, b])
    msg = str(err.value)
    assert f"--report {a} and --report {b}: two files named {a.name}" in msg and "rename one" in msg
    assert "\n" not in msg
    with pytest.raises(ConfigError, match="given twice"):
        api.attest_run(run["run_id"], run["db"], keys["priv"], tmp_path / "att", "Ada", [a, a])
    assert not (tmp_path / "att").exists()  # nothing written
    cli = subprocess.run(CLI + ["attest", run["run_id"], "--db", str(run["db"]), "--key", str(keys["priv"]),
                                "--report", str(a), "--report", str(b), "--out", str(tmp_path / "att")],
                         capture_output=True, text=True)
    assert cli.returncode != 0 and "two files named" in cli.stderr and "Traceback" not in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "att").exists()


def test_verify_needs_each_signed_file_of_a_name_listed_twice(run, keys, tmp_path):
    """A bundle made before attest refused it (or by another tool) lists X.html twice: one file cannot stand for
    both subjects."""
    a, b = two_reports_of_one_name(run, run["db"], tmp_path)
    with Store(run["db"], read_only=True) as store:
        stored, findings = store.run(run["run_id"]), store.findings(run["run_id"])
    signer = Signer.load(keys["priv"], "Ada")
    (tmp_path / "signed").mkdir()
    bundle = write_bundle(sign(statement(stored, findings, [a, b], signer), signer),
                          tmp_path / "signed" / "old.intoto.json")
    shutil.copy(a, tmp_path / "signed" / a.name)  # only one of the two signed files beside the bundle
    with pytest.raises(VerificationError, match=r"signed file\(s\) missing.*" + re.escape(f"{b.name} (SHA-256 "
                                                                                           f"{sha256(b)[:16]}...)")):
        api.verify_bundle(bundle, None, keys["pub"])
    with pytest.raises(VerificationError, match="missing"):
        api.verify_bundle(bundle, [a], keys["pub"])  # the same file given as well: still one of two
    res = api.verify_bundle(bundle, [a, b], keys["pub"])
    assert sorted(str(p) for p, _ in res.checked) == sorted([str(a), str(b)])
    shutil.copy(b, tmp_path / "signed" / b.name)  # now the one beside is b: a is the one missing
    with pytest.raises(VerificationError, match=re.escape(f"{a.name} (SHA-256 {sha256(a)[:16]}...)")):
        api.verify_bundle(bundle, None, keys["pub"])


def test_the_results_file_never_takes_the_name_of_a_report_it_signs(run, keys, tmp_path):
    first, _ = api.attest_run(run["run_id"], run["db"], keys["priv"], tmp_path / "one", "Ada")
    results, bundle = api.attest_run(run["run_id"], run["db"], keys["priv"], tmp_path / "two", "Ada", [first])
    assert results.name == f"attestation-{run['run_id']}-2.results.json" != first.name
    shutil.copy(first, tmp_path / "two" / first.name)
    assert {n for _, n in api.verify_bundle(bundle, None, keys["pub"]).checked} == {first.name, results.name}


# --------------------------------------------------------------------------- a report older than the findings
def test_attest_refuses_a_report_made_before_the_pack_was_applied_again(run, db, keys, tmp_path):
    pack = tmp_path / "my-policy.yaml"
    rid = run["run_id"]
    api.evaluate_rules(rid, db, [write_pack(pack, fail_if=1e9)])  # lenient: nothing of my-policy fails
    lenient = my_policy(db, rid)
    html, pdf = html_and_pdf(rid, db, tmp_path / "old")
    old_json = api.export_run(rid, db, tmp_path / "export")[0]
    api.evaluate_rules(rid, db, [str(pack)])  # the same pack again: new evaluation time, the same findings
    api.attest_run(rid, db, keys["priv"], tmp_path / "same", "Ada", [html, pdf, old_json])

    api.evaluate_rules(rid, db, [write_pack(pack)])  # the user's pack tightened and applied again
    assert "fail" in my_policy(db, rid).values() and my_policy(db, rid) != lenient
    for f in (html, pdf, old_json):
        with pytest.raises(NotSignable) as err:
            api.attest_run(rid, db, keys["priv"], tmp_path / "att", "Ada", [f])
        msg = str(err.value)
        assert f"--report {f}: predates the run's current findings (it says fail " in msg and "\n" not in msg
        assert ": e.g. my-policy " in msg and " there, fail now" in msg  # which verdict changed, not only counts
        assert (f"export it again (faceaudit export {rid})" if f.suffix == ".json"
                else f"render it again (faceaudit report {rid})") in msg
    assert not (tmp_path / "att").exists()  # nothing written
    cli = subprocess.run(CLI + ["attest", rid, "--db", str(db), "--key", str(keys["priv"]), "--report", str(html),
                                "--out", str(tmp_path / "att")], capture_output=True, text=True)
    assert cli.returncode != 0 and "predates the run's current findings" in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1 and "Traceback" not in cli.stderr

    html, pdf = html_and_pdf(rid, db, tmp_path / "new")  # rendered again: signed, and verified
    results, bundle = api.attest_run(rid, db, keys["priv"], tmp_path / "att", "Ada", [html, pdf])
    res = api.verify_bundle(bundle, [html, pdf], keys["pub"])
    assert res.statement["predicate"]["result"] == "FAILED" and len(res.checked) == 3


def test_a_report_of_some_packs_is_current_and_signed(run, keys, tmp_path):
    """``faceaudit report RUN --pack baseline`` shows one of the run's packs: not stale, only narrower."""
    with Store(run["db"], read_only=True) as store:
        assert store.findings(run["run_id"])["pack"].nunique() > 1
    report = api.build_report(run["run_id"], run["db"], tmp_path / "r", ["html"], packs=["baseline"])[0]
    assert "eu-ai-act ·" not in report.read_text() and "baseline ·" in report.read_text()
    _, bundle = api.attest_run(run["run_id"], run["db"], keys["priv"], tmp_path / "att", "Ada", [report])
    assert len(api.verify_bundle(bundle, [report], keys["pub"]).checked) == 2


def test_the_findings_digest_a_report_carries_decides(run, db, keys, tmp_path):
    """With the digest of its findings in its head (as the renderer writes it), a report is compared on every
    value and threshold, not only on the verdicts its tables show; without it (an older or edited page) the page
    itself is compared with the page the store renders, and the threshold it shows gives it away."""
    pack = tmp_path / "my-policy.yaml"
    rid = run["run_id"]
    api.evaluate_rules(rid, db, [write_pack(pack, fail_if=1e9)])
    report = api.build_report(rid, db, tmp_path / "report", ["html"])[0]
    assert f'<meta name="faceaudit-findings" content="sha256:{current_digest(db, rid)}">' in report.read_text()
    plain = with_digest(report, None, tmp_path / "plain" / report.name)
    carried = report
    api.attest_run(rid, db, keys["priv"], tmp_path / "ok", "Ada", [carried])  # current: signed

    before = my_policy(db, rid)
    api.evaluate_rules(rid, db, [write_pack(pack, fail_if=1e8)])  # other thresholds, the same verdicts
    assert my_policy(db, rid) == before
    with pytest.raises(NotSignable, match="predates the run's current findings"):
        api.attest_run(rid, db, keys["priv"], tmp_path / "att", "Ada", [carried])
    with pytest.raises(NotSignable) as err:  # its verdict tables cannot tell; its page can
        api.attest_run(rid, db, keys["priv"], tmp_path / "att", "Ada", [plain])
    assert "is not the report faceaudit renders from run" in str(err.value)
    assert "fail if > 1e+09.' where the store gives " in str(err.value) and "fail if > 1e+08." in str(err.value)
    assert not (tmp_path / "att").exists()
    fresh = api.build_report(rid, db, tmp_path / "again", ["html"])[0]
    _, bundle = api.attest_run(rid, db, keys["priv"], tmp_path / "att2", "Ada", [fresh])
    assert len(api.verify_bundle(bundle, [fresh], keys["pub"]).checked) == 2


def test_verify_refuses_a_report_signed_with_findings_that_replaced_its_own(run, db, keys, tmp_path):
    """A bundle made before attest compared findings (or by another tool): the old report says all passed, the
    signed statement FAILED; verify names the report and a rule on which they differ."""
    pack = tmp_path / "my-policy.yaml"
    rid = run["run_id"]
    api.evaluate_rules(rid, db, [write_pack(pack, fail_if=1e9)])
    html, pdf = html_and_pdf(rid, db, tmp_path / "reports")
    api.evaluate_rules(rid, db, [write_pack(pack)])
    with Store(db, read_only=True) as store:
        stored, findings = store.run(rid), store.findings(rid)
    signer = Signer.load(keys["priv"], "Ada")
    bundle = write_bundle(sign(statement(stored, findings, [html, pdf], signer), signer),
                          tmp_path / "reports" / "old.intoto.json")
    for given in (None, [pdf], [html]):
        with pytest.raises(VerificationError) as err:
            api.verify_bundle(bundle, given, keys["pub"])
        msg = str(err.value)
        assert re.search(r": shows my-policy/\S+ as [\w ]+, the signed statement as [\w ]+: the file predates the "
                         "findings that were signed", msg), msg
        assert "\n" not in msg
    cli = subprocess.run(CLI + ["verify", str(bundle), "--pubkey", str(keys["pub"])], capture_output=True, text=True)
    assert cli.returncode == 1 and "predates the findings that were signed" in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
