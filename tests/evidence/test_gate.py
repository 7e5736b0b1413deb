"""The CI gate: exit codes at each level and JUnit XML with one test case per rule."""

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from audit import api
from audit.errors import ConfigError
from audit.rules import load_pack
from audit.store import Store

PACK = """pack: ci-demo
version: "2"
rules:
  - id: CI-ALWAYS-WARN
    title: AUC is above zero (warns on any working model)
    probe: identity
    metric: roc_auc
    where: {condition: clean}
    warn_if: "> 0"
    references: ["ISO/IEC 19795-1"]
  - id: CI-NEVER
    title: AUC is negative (never)
    probe: identity
    metric: roc_auc
    fail_if: "< 0"
  - id: CI-NOT-RUN
    title: Needs the inversion probe, which did not run
    probe: inversion
    metric: sar_type1
    fail_if: "> 0.5"
"""


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    p = tmp_path_factory.mktemp("pack") / "ci-demo.yaml"
    p.write_text(PACK)
    return p


def test_gate_levels(run, pack):
    res = api.gate(run["run_id"], run["db"], [str(pack)], "fail")
    assert res.exit_code == 0 and set(res.findings["status"]) == {"warn", "pass", "not_applicable"}
    # ci-demo reads no attribute: every one the run measured is named (the shipped packs read them all)
    with Store(run["db"], read_only=True) as store:
        measured = set(store.metrics(run["run_id"]).query("attribute != ''")["attribute"])
    assert set(res.unread) == measured and {"sex", "control"} <= measured
    assert api.gate(run["run_id"], run["db"], None, "fail").unread == ()
    res = api.gate(run["run_id"], run["db"], [str(pack)], "warn")
    assert res.exit_code == 1 and list(res.blocking["rule_id"]) == ["CI-ALWAYS-WARN"]
    with pytest.raises(ConfigError, match="--fail-on"):
        api.gate(run["run_id"], run["db"], [str(pack)], "pass")


def test_gate_on_shipped_packs_agrees_with_stored_findings_and_writes_nothing(run):
    with Store(run["db"]) as store:
        stored = store.findings(run["run_id"])
    res = api.gate(run["run_id"], run["db"], None, "fail")
    assert res.exit_code == int((stored["status"] == "fail").any())
    assert sorted(res.findings["status"]) == sorted(stored["status"])
    with Store(run["db"]) as store:
        assert len(store.findings(run["run_id"])) == len(stored)


def test_junit_has_one_case_per_rule(run, pack, tmp_path):
    junit = tmp_path / "junit.xml"
    api.gate(run["run_id"], run["db"], [str(pack), "baseline"], "warn", junit)
    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    baseline = load_pack("baseline")
    assert set(suites) == {"ci-demo@2", f"baseline@{baseline.version}"}
    demo = suites["ci-demo@2"]
    cases = {c.get("name").split(":")[0]: c for c in demo.iter("testcase")}
    assert set(cases) == {"CI-ALWAYS-WARN", "CI-NEVER", "CI-NOT-RUN"}
    assert cases["CI-ALWAYS-WARN"].find("failure") is not None
    assert cases["CI-NOT-RUN"].find("skipped") is not None
    assert cases["CI-NEVER"].find("failure") is None and cases["CI-NEVER"].find("skipped") is None
    assert demo.get("tests") == "3" and demo.get("failures") == "1" and demo.get("skipped") == "1"
    props = {p.get("name"): p.get("value") for p in demo.iter("property")}
    assert props["run_id"] == run["run_id"] and len(props["model_sha256"]) == 64
    n_rules = sum(int(s.get("tests")) for s in suites.values())
    assert root.get("tests") == str(n_rules) == str(len(list(root.iter("testcase"))))


def test_cli_gate_exit_codes(run, pack, tmp_path):
    cli = [sys.executable, "-m", "audit.cli", "gate", run["run_id"], "--db", str(run["db"]), "--pack", str(pack)]
    ok = subprocess.run(cli, capture_output=True, text=True)
    assert ok.returncode == 0 and "gate OPEN" in ok.stdout
    closed = subprocess.run(cli + ["--fail-on", "warn", "--junit", str(tmp_path / "j.xml")], capture_output=True,
                            text=True)
    assert closed.returncode == 1 and "gate CLOSED" in closed.stdout and "CI-ALWAYS-WARN" in closed.stdout
    assert (tmp_path / "j.xml").is_file()
    bad = subprocess.run(cli + ["--junit", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "is a folder" in bad.stderr and "Traceback" not in bad.stderr


def test_a_gate_with_nothing_judged_stays_closed_and_such_a_run_is_not_signed(run, tmp_path):
    """Every rule not_applicable (here: the one rule needs a probe that did not run) is no verdict: the gate stays
    closed, says why, and JUnit shows it as a failure; a statement on such findings would certify PASSED with
    nothing tested, so it is refused."""
    from audit.errors import NotSignable
    from audit.evidence.attest import require_signable

    only = tmp_path / "only-inversion.yaml"
    only.write_text(PACK.split("  - id: CI-ALWAYS-WARN")[0] + "  - id: CI-NOT-RUN" + PACK.split("  - id: CI-NOT-RUN")[1])
    junit = tmp_path / "junit.xml"
    res = api.gate(run["run_id"], run["db"], [str(only)], "fail", junit)
    assert list(res.findings["status"]) == ["not_applicable"] and res.blocking.empty
    assert res.exit_code == 1 and "no rule judged the run" in res.unjudged
    failure = ET.parse(junit).getroot().find(".//testsuite[@name='faceaudit-run']/testcase/failure")
    assert failure is not None and failure.get("type") == "not-judged"
    cli = subprocess.run([sys.executable, "-m", "audit.cli", "gate", run["run_id"], "--db", str(run["db"]), "--pack",
                          str(only)], capture_output=True, text=True)
    assert cli.returncode == 1 and "NOT JUDGED no rule judged the run" in cli.stdout and "gate CLOSED" in cli.stdout
    with Store(run["db"], read_only=True) as store:
        stored, findings = store.run(run["run_id"]), store.findings(run["run_id"])
    require_signable(stored, findings)  # the stored findings judge it
    with pytest.raises(NotSignable, match="findings are not_applicable, so no rule judged it"):
        require_signable(stored, findings.assign(status="not_applicable"))


def test_a_rule_too_uncertain_to_judge_closes_the_strict_gate_and_is_not_signed_passed(run, tmp_path):
    """A review of the verdict path: a rule whose interval cannot tell a pass from a failure ("too uncertain",
    not_applicable) was counted as nothing: one other passing rule opened the gate at --fail-on warn, and attest
    signed PASSED (sex leakage 0.55 [0.04, 0.90]). Now the strict gate closes on it (JUnit: a failure of type
    'undecided'), the default gate names it as UNDECIDED beside an open verdict, and a statement says WARNED."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.evidence.attest import Signer, statement

    with Store(run["db"], read_only=True) as store:
        m = store.metrics(run["run_id"]).query("probe == 'identity' and metric == 'roc_auc' and condition == 'clean'")
        stored = store.run(run["run_id"])
    lo, hi = float(m["ci_low"].iloc[0]), float(m["ci_high"].iloc[0])
    assert lo < hi
    pack = tmp_path / "ci-doubt.yaml"
    pack.write_text(PACK.split("  - id: CI-ALWAYS-WARN")[0] + f"""  - id: CI-DOUBT
    title: AUC judged at its upper end; the lower end reaches the fail limit
    probe: identity
    metric: roc_auc
    where: {{condition: clean}}
    fail_if: "< {(lo + hi) / 2:.6f}"
    use: ci_high
  - id: CI-NEVER
    title: AUC is negative (never)
    probe: identity
    metric: roc_auc
    fail_if: "< 0"
""")
    res = api.gate(run["run_id"], run["db"], [str(pack)], "fail")
    assert res.exit_code == 0 and res.blocking.empty and res.n_undecided == 1
    assert list(res.doubtful["rule_id"]) == ["CI-DOUBT"]
    junit = tmp_path / "j.xml"
    strict = api.gate(run["run_id"], run["db"], [str(pack)], "warn", junit)
    assert strict.exit_code == 1 and list(strict.blocking["rule_id"]) == ["CI-DOUBT"]
    case = ET.parse(junit).getroot().find(".//testcase[@name='CI-DOUBT: AUC judged at its upper end; the lower end "
                                          "reaches the fail limit']")
    assert case.find("failure").get("type") == "undecided"
    cli = [sys.executable, "-m", "audit.cli", "gate", run["run_id"], "--db", str(run["db"]), "--pack", str(pack)]
    out = subprocess.run(cli, capture_output=True, text=True)
    assert out.returncode == 0 and "UNDECIDED ci-demo/CI-DOUBT (closes the gate at --fail-on warn): Too uncertain" \
        in out.stdout and "(of which 1 undecided: too uncertain to judge)" in out.stdout
    out = subprocess.run(cli + ["--fail-on", "warn"], capture_output=True, text=True)
    assert out.returncode == 1 and "UNDECIDED ci-demo/CI-DOUBT: Too uncertain" in out.stdout
    stmt = statement(stored, res.findings, [], Signer(Ed25519PrivateKey.generate(), "t"))
    assert stmt["predicate"]["result"] == "WARNED"
    # Page one says so too, not only "No rule failed or warned" with the rule among those not tested
    import shutil

    db = tmp_path / "judged.duckdb"
    shutil.copy(run["db"], db)
    html = api.build_report(run["run_id"], db, tmp_path / "rep", ["html"], packs=[str(pack)], apply_packs=True)[0]
    page_one = html.read_text()
    page_one = page_one[page_one.index('id="summary"'):page_one.index('class="counts"')]
    assert "Could not be told from a failure.</strong> 1 rule whose data cannot exclude one" in page_one
    assert "AUC judged at its upper end; the lower end reaches the fail limit" in page_one
    assert "but that is no pass for the rules whose data could not tell" in page_one
    assert stmt["predicate"]["configuration"][0]["annotations"]["undecided"] == "ci-demo/CI-DOUBT"


def test_a_run_another_minor_version_computed_closes_the_gate_and_is_not_signed(run):
    """A review of the change: 0.4.0 re-judged, gated and signed runs computed by 0.3, whose numbers its own changelog
    says understate risk (cloaks computed from the gallery image, masked templates inverted by the decoder alone,
    leakage attackers fitted for plain accuracy). Such a run closes the gate and is not signed; a patch's is judged."""
    import copy

    import audit
    from audit.errors import NotSignable
    from audit.evidence.attest import require_signable
    from audit.evidence.gate import judge

    with Store(run["db"], read_only=True) as store:
        stored, findings = store.run(run["run_id"]), store.findings(run["run_id"])
    major, minor, _ = audit.__version__.split(".")
    older, patch = copy.deepcopy(stored), copy.deepcopy(stored)
    older["environment"]["faceaudit"] = f"{major}.{int(minor) - 1}.0"
    patch["environment"]["faceaudit"] = f"{major}.{minor}.99"
    res = judge(findings, "fail", older)
    assert res.exit_code == 1 and f"computed by faceaudit {major}.{int(minor) - 1}.0" in res.incomplete
    with pytest.raises(NotSignable, match=r"whose numbers mean something other than this faceaudit's .*before signing"):
        require_signable(older, findings)
    assert judge(findings, "fail", patch).incomplete is None
    require_signable(patch, findings)
    unknown = copy.deepcopy(stored)
    del unknown["environment"]["faceaudit"]  # a run of unknown version is never taken for this version's
    assert "computed by faceaudit of unknown version" in judge(findings, "fail", unknown).incomplete


def test_a_warning_that_cannot_exclude_a_fail_is_named_by_the_gate_and_the_signed_statement(run, tmp_path):
    """A review of the change: a warning whose interval reaches the fail limit (judged at its lenient end) was named by
    the gate but signed as a plain warning; the statement names it and verify prints it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.evidence.attest import Signer, describe, statement

    with Store(run["db"], read_only=True) as store:
        m = store.metrics(run["run_id"]).query("probe == 'identity' and metric == 'roc_auc' and condition == 'clean'")
        stored = store.run(run["run_id"])
    lo, hi = float(m["ci_low"].iloc[0]), float(m["ci_high"].iloc[0])
    pack = tmp_path / "ci-could-fail.yaml"
    pack.write_text(f"""pack: ci-could-fail
version: "1"
rules:
  - id: CI-COULD-FAIL
    title: AUC judged at its lower end, which warns; its upper end reaches the fail limit
    probe: identity
    metric: roc_auc
    where: {{condition: clean}}
    warn_if: "> {lo - 1e-6:.7f}"
    fail_if: "> {(lo + hi) / 2:.7f}"
    use: ci_low
""")
    res = api.gate(run["run_id"], run["db"], [str(pack)], "fail")
    assert res.exit_code == 0 and list(res.doubtful["rule_id"]) == ["CI-COULD-FAIL"]
    assert list(res.findings["status"]) == ["warn"] and "a fail cannot be excluded" in res.findings["message"].iloc[0]
    stmt = statement(stored, res.findings, [], Signer(Ed25519PrivateKey.generate(), "t"))
    assert stmt["predicate"]["result"] == "WARNED"
    notes = stmt["predicate"]["configuration"][0]["annotations"]
    assert notes["warned_fail_not_excluded"] == "ci-could-fail/CI-COULD-FAIL"
    assert any("warned, a fail not excluded" in line for line in describe(stmt))


def test_a_pass_on_part_of_the_pooled_attributes_says_so_on_page_one_and_in_the_statement(run):
    """A review of the verdicts: DEMO-FMR-PARITY ("... across sex and skin-tone groups") passes on a dataset labelled
    by sex alone; that it covers sex only was in the rule's message alone, and page one and the signed statement
    (its passed tests) dropped it."""
    import pandas as pd
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.evidence.attest import Signer, describe, statement
    from audit.report.narrative import verdict
    from audit.rules.engine import evaluate

    with Store(run["db"], read_only=True) as store:
        stored = store.run(run["run_id"])
    base = {"run_id": run["run_id"], "group": "all", "n": 2400, "direction": "higher_is_riskier", "probe": "identity",
            "condition": "clean", "setting": "fmr=0.001"}
    rows = [{"metric": "fmr_max_min", "attribute": "sex", "value": 1.2, "ci_low": 1.05, "ci_high": 1.5},
            {"metric": "fmr", "attribute": "", "value": 0.001, "ci_low": 0.0009, "ci_high": 0.0011}]
    rows += [{"metric": "group_persons", "attribute": "sex", "group": g, "value": 5000, "ci_low": 5000,
              "ci_high": 5000} for g in ("female", "male")]
    metrics = pd.DataFrame([{**base, **r} for r in rows])
    findings = evaluate(load_pack("baseline"), run["run_id"], metrics, {"identity"})
    findings = findings[findings["rule_id"] == "DEMO-FMR-PARITY"]
    assert list(findings["status"]) == ["pass"], findings["message"].iloc[0]
    page = verdict(findings, metrics, ["identity"], ["identity"], [])
    assert page["partial"] == [{"title": findings["title"].iloc[0], "rule": "baseline · DEMO-FMR-PARITY",
                                "missing": "skin tone, race"}]
    stmt = statement(stored, findings, [], Signer(Ed25519PrivateKey.generate(), "t"))
    notes = stmt["predicate"]["configuration"][0]["annotations"]
    assert stmt["predicate"]["result"] == "PASSED"
    assert notes["passed_in_part"] == "baseline/DEMO-FMR-PARITY (no result for skin_tone, race)"
    assert "passed on part of what the rule names only: baseline/DEMO-FMR-PARITY (no result for skin_tone, race)" \
        in describe(stmt)
