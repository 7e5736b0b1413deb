"""Signed attestations: an in-toto Statement (v1) with the test-result predicate, in a DSSE
envelope signed with Ed25519, and its verification.

Subjects are what the attestation vouches for: the model file (its SHA-256; with external-data weights each of its
files), the dataset (its
fingerprint over manifest and image files), and every evidence file written for the run (the
JSON results, HTML and PDF reports), so a verifier can tell whether a file is the one signed.
The predicate (``https://in-toto.io/attestation/test-result/v0.1``) lists the rule ids that
passed, warned and failed; its ``configuration`` names the run configuration and each rule pack
by digest. The bundle file wraps the envelope with the signer's public key for convenience;
trust comes from ``--pubkey``, not from the key inside the bundle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import audit
from audit.atomic import write_atomic
from audit.config import result_fields
from audit.errors import FaceAuditError, NotSignable
from audit.evidence import gate, keys
from audit.evidence.dataset import DETECTED_ID, FINGERPRINT, dataset_identity
from audit.evidence.shown import RESULTS_ATTACHMENT, bounded, canonical_json, evidence_run, shown_findings
from audit.rules.engine import any_judged, shipped_hash

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPE = "application/vnd.faceaudit.attestation+json;version=1"


class VerificationError(FaceAuditError):
    """The signature, the statement or a file does not match: the evidence cannot be trusted."""

    exit_code = 1


def require_signable(run: dict, findings: pd.DataFrame) -> None:
    """Only a completed run that has been judged can be signed: an interrupted, failed or running run is
    never a pass, and a completed run without findings, or whose every finding is ``not_applicable``, would be
    certified PASSED with 0 tests."""
    if run["status"] != "completed":
        raise NotSignable(f"run {run['run_id']} is {run['status']}: an incomplete run cannot be signed; finish it "
                          "(faceaudit run --resume RUN) or audit again")
    if why := gate.outdated(run):
        raise NotSignable(why + " before signing")
    if findings.empty:
        raise NotSignable(f"run {run['run_id']} has no findings: no rule pack was applied to it, so there is nothing "
                          f"to sign; apply the packs first (faceaudit report {run['run_id']} --pack baseline)")
    if not any_judged(findings):
        raise NotSignable(f"run {run['run_id']}: all {len(findings)} findings are not_applicable, so no rule judged it "
                          "and a statement would certify PASSED with nothing tested; run the probes the packs read, on "
                          "enough persons, and sign that run")
    judged_by = findings["judged_by"].fillna("") if "judged_by" in findings else pd.Series("", index=findings.index)
    earlier = sorted({str(v) or "before 0.4.0" for v in judged_by if v != audit.__version__})
    if earlier:  # the same pack text judged by another faceaudit may give other verdicts (its rules of judgement)
        raise NotSignable(f"run {run['run_id']}: its findings were judged by faceaudit {', '.join(earlier)}, not by "
                          f"this faceaudit ({audit.__version__}), whose statement would vouch for them; judge it "
                          f"again first (faceaudit report {run['run_id']} --pack "
                          f"{','.join(sorted(set(findings['pack'])))})")
    stale = sorted({f.pack for f in findings.itertuples()
                    if shipped_hash(f.pack) is not None and f.pack_hash != shipped_hash(f.pack)})
    if stale:  # a statement names this faceaudit; findings of an earlier pack text (or engine) are not its verdicts
        raise NotSignable(f"run {run['run_id']}: its findings of {', '.join(stale)} were judged with another version "
                          f"of {'that pack' if len(stale) == 1 else 'those packs'} than this faceaudit ships; judge it "
                          f"again first (faceaudit report {run['run_id']} --pack {','.join(stale)})")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise FaceAuditError(f"{path}: cannot read: {exc.strerror}") from None
    return h.hexdigest()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Signer:
    """Who signs: the private key and the name printed on the report's attestation page."""

    key: Ed25519PrivateKey
    name: str
    signed_at: str = field(default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0).isoformat())

    @property
    def keyid(self) -> str:
        return keys.fingerprint(self.key.public_key())

    @classmethod
    def load(cls, key_path: str | Path, name: str | None) -> "Signer":
        return cls(keys.load_private(key_path), (name or "").strip() or "unnamed signer")


def _dataset_subject(run: dict) -> dict:
    """The dataset subject: digest = the file fingerprint; with a face detector its key and the dataset id (which
    hashes the key in) are annotations of their own."""
    ident = dataset_identity(run)
    notes = {"kind": "dataset", "fingerprint": FINGERPRINT}
    if ident["detector"]:
        notes.update({"face_detector": ident["detector"], "dataset_id": ident["id"], "dataset_id_is": DETECTED_ID})
    if ident["fingerprint"] is None:  # a run stored before the fingerprint was recorded: only its id is known
        notes["fingerprint"] = f"not recorded by this run; the digest is the dataset id ({DETECTED_ID})"
    return {"name": f"dataset:{run['dataset_name']}", "digest": {"sha256": ident["fingerprint"] or ident["id"]},
            "annotations": notes}


def _model_subjects(run: dict) -> list[dict]:
    """The model file (digest: its SHA-256, the model's id), or, for a model whose weights lie in external-data files,
    the .onnx file and each external file with its own SHA-256 (the model's id, made of them, an annotation), so that
    each subject is a file a verifier can hash (until 0.11.0 the id alone named the .onnx file)."""
    notes = {"kind": "model", "model_name": run["model_name"]}
    files = (run.get("model_info") or {}).get("files") or {}
    if not files:
        return [{"name": Path(run["model_path"]).name, "digest": {"sha256": run["model_id"]}, "annotations": notes}]
    notes["model_id"] = run["model_id"]
    notes["model_id_is"] = "SHA-256 over the .onnx file's checksum and each external-data file's name and checksum"
    return [{"name": name, "digest": {"sha256": digest}, "annotations": notes} for name, digest in files.items()]


def statement(run: dict, findings: pd.DataFrame, files: list[Path], signer: Signer) -> dict:
    """The in-toto Statement for a stored run (``run`` as returned by ``Store.run``); only a completed run
    with findings can be stated (:func:`require_signable`)."""
    require_signable(run, findings)
    subjects = [*_model_subjects(run), _dataset_subject(run)]
    subjects += [{"name": p.name, "digest": {"sha256": sha256_file(p)}, "annotations": {"kind": "evidence"}}
                 for p in files]
    by_status = {s: sorted(f"{r.pack}/{r.rule_id}" for r in findings.itertuples() if r.status == s)
                 for s in ("pass", "warn", "fail", "not_applicable")}
    # A rule whose interval cannot tell a pass from a warning or a failure is no evidence of a pass: WARNED, named
    undecided = sorted(f"{r.pack}/{r.rule_id}" for r in findings[gate.undecided(findings).notna()].itertuples())
    # warnings whose measured value or interval reaches the fail limit: signed as warned, and said (a review)
    could_fail = sorted(f"{r.pack}/{r.rule_id}" for r in findings[gate.fail_not_excluded(findings)].itertuples())
    # passes that cover part of what the rule names (a pooled attribute without a result): said beside the pass
    partial = sorted(f"{r.pack}/{r.rule_id} (no result for {', '.join(missing)})" for r in findings.itertuples()
                     if r.status == "pass" and (missing := gate.no_result_for(getattr(r, "location", None))))
    result = "FAILED" if by_status["fail"] else "WARNED" if by_status["warn"] or undecided else "PASSED"
    config = run["config"]
    configuration = [{
        "name": "faceaudit-run-config", "mediaType": "application/json",
        "digest": {"sha256": hashlib.sha256(canonical_json(config)).hexdigest()},
        "content": base64.b64encode(canonical_json(config)).decode(),
        "annotations": {"run_id": run["run_id"], "seed": str(run["seed"]), "preset": str(config.get("preset")),
                        "tool": f"faceaudit {audit.__version__}",
                        # the faceaudit that computed the numbers (the signing one judged them), and the settings that
                        # decide them without the paths they were given by (equal for a faithful re-run elsewhere)
                        "computed_by": f"faceaudit {(run.get('environment') or {}).get('faceaudit') or 'unknown'}",
                        "result_settings_sha256": hashlib.sha256(canonical_json(result_fields(config))).hexdigest(),
                        "signer": signer.name,
                        "signed_at": signer.signed_at, "not_applicable": ", ".join(by_status["not_applicable"]),
                        "undecided": ", ".join(undecided),
                        "warned_fail_not_excluded": ", ".join(could_fail),
                        **({"passed_in_part": "; ".join(partial)} if partial else {})}}]
    packs = findings[["pack", "pack_version", "pack_hash"]].drop_duplicates().sort_values("pack")
    configuration += [{"name": f"rule-pack:{p.pack}@{p.pack_version}", "digest": {"sha256": p.pack_hash}}
                      for p in packs.itertuples() if p.pack_hash]
    protocol = config.get("protocol")
    if protocol:  # the protocol the run was made under: a regulator's published file, named and hashed
        configuration.append({"name": f"protocol:{protocol['name']}@{protocol.get('version', '')}",
                              "digest": {"sha256": protocol["sha256"]}})
    return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE,
            "predicate": {"result": result, "configuration": configuration, "passedTests": by_status["pass"],
                          "warnedTests": by_status["warn"], "failedTests": by_status["fail"]}}


def sign(stmt: dict, signer: Signer) -> dict:
    """A faceaudit bundle: the DSSE envelope plus the signer's public key (for convenience only)."""
    payload = canonical_json(stmt)
    sig = signer.key.sign(pae(PAYLOAD_TYPE, payload))
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                "signatures": [{"keyid": signer.keyid, "sig": base64.b64encode(sig).decode()}]}
    return {"mediaType": BUNDLE_MEDIA_TYPE, "dsseEnvelope": envelope,
            "verificationMaterial": {"publicKey": {"keyid": signer.keyid,
                                                   "pem": keys.public_pem(signer.key.public_key())}}}


def write_bundle(bundle: dict, path: Path) -> Path:
    return write_atomic(path, (json.dumps(bundle, indent=1, sort_keys=True) + "\n").encode())


# --------------------------------------------------------------------------- verification
@dataclass
class Verified:
    """What :func:`verify` established."""

    statement: dict
    keyid: str
    trusted_key: bool
    """True when the signature was checked against a key the user supplied (``--pubkey``)."""
    checked: list[tuple[Path, str]]
    """(file, subject name) pairs whose SHA-256 matched the signed statement."""


def _b64(text, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise VerificationError(f"{where}: not valid base64; the bundle was altered") from None


def _pdf_diagnosis(path: Path) -> str | None:
    """Why a PDF differs, when it is plain to see: unreadable, or its embedded results are gone."""
    if path.suffix.lower() != ".pdf":
        return None
    from pypdf import PdfReader

    try:
        attachments = PdfReader(path).attachments
    except Exception:  # noqa: BLE001 (PyPdfError and anything else a damaged object tree raises)
        # A damaged object tree raises almost anything from pypdf; the file is already known not to be the one
        # signed, so the diagnosis only words that, and never fails.
        return "not a readable PDF any more"
    if RESULTS_ATTACHMENT not in attachments:
        return f"the embedded results ({RESULTS_ATTACHMENT}) are missing"
    return None


def load_bundle(path: str | Path) -> dict:
    path = Path(path)
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FaceAuditError(f"{path}: no such attestation bundle") from None
    except IsADirectoryError:
        raise FaceAuditError(f"{path}: is a folder, not an attestation bundle") from None
    except RecursionError:  # e.g. 100,000 nested brackets: the JSON parser gives up, so does the bundle
        raise VerificationError(f"{path}: not a faceaudit attestation bundle (JSON nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: JSONDecodeError, a 5,000-digit number
        raise VerificationError(f"{path}: not a faceaudit attestation bundle ({str(exc).splitlines()[0][:120]})") \
            from None
    env = bundle.get("dsseEnvelope") if isinstance(bundle, dict) else None
    if (not isinstance(env, dict) or not isinstance(env.get("signatures"), list) or not env["signatures"]
            or not all(isinstance(s, dict) for s in env["signatures"]) or not isinstance(env.get("payload"), str)):
        raise VerificationError(f"{path}: not a faceaudit attestation bundle (no signed DSSE envelope)")
    return bundle


def _statement_run(stmt: dict) -> str | None:
    """The run id the statement is about (the run configuration's annotation)."""
    for c in (stmt.get("predicate") or {}).get("configuration") or []:
        if isinstance(c, dict) and c.get("name") == "faceaudit-run-config":
            notes = c.get("annotations")
            run_id = notes.get("run_id") if isinstance(notes, dict) else None
            return run_id if isinstance(run_id, str) else None
    return None


def describe(stmt: dict) -> list[str]:
    """What a verified statement vouches for, in lines a person reads before trusting its result: the model and dataset
    (name and digest), the run, who signed it when with which faceaudit, the protocol and the rule packs."""
    pred = stmt.get("predicate") if isinstance(stmt.get("predicate"), dict) else {}
    lines = []
    for s in stmt.get("subject") or []:
        if not isinstance(s, dict):
            continue
        kind = (s.get("annotations") or {}).get("kind") if isinstance(s.get("annotations"), dict) else None
        if kind in ("model", "dataset"):
            digest = str((s.get("digest") or {}).get("sha256", ""))[:16] if isinstance(s.get("digest"), dict) else ""
            lines.append(f"{kind}: {s.get('name')} (sha256 {digest}...)")
    configs = [c for c in pred.get("configuration") or [] if isinstance(c, dict)]
    run_notes: dict = {}
    for c in configs:
        notes = c.get("annotations") if isinstance(c.get("annotations"), dict) else {}
        if c.get("name") == "faceaudit-run-config":
            run_notes = notes
            lines.append(f"run {notes.get('run_id')}, preset {notes.get('preset')}, seed {notes.get('seed')}; signed by "
                         f"{notes.get('signer')} at {notes.get('signed_at')} with {notes.get('tool')}"
                         + (f"; computed by {notes['computed_by']}" if notes.get("computed_by") else ""))
            if notes.get("result_settings_sha256"):
                lines.append(f"result-affecting settings: sha256 {str(notes['result_settings_sha256'])[:16]}... "
                             "(without paths: equal for the same settings, model and data anywhere)")
            if notes.get("undecided"):
                lines.append(f"not judged, could not be told from a warning or failure: {notes['undecided']}")
            if notes.get("passed_in_part"):
                lines.append(f"passed on part of what the rule names only: {notes['passed_in_part']}")
            if notes.get("warned_fail_not_excluded"):
                lines.append(f"warned, a fail not excluded (the measured value or the interval reaches the fail "
                             f"limit): {notes['warned_fail_not_excluded']}")
    named = [str(c.get("name")) for c in configs if str(c.get("name", "")).startswith(("rule-pack:", "protocol:"))]
    if named:
        lines.append("judged under " + ", ".join(named))
    counts = {k: len(pred.get(k) or []) for k in ("passedTests", "warnedTests", "failedTests")}
    unjudged = [r for r in str(run_notes.get("not_applicable") or "").split(", ") if r]
    # A result of PASSED over one judged rule of many says little: how many were not judged is said beside it (a
    # review of the evidence: 35 of 36 rules not judged were visible only inside the signed payload).
    lines.append(f"rules: {counts['failedTests']} failed, {counts['warnedTests']} warned, {counts['passedTests']} passed"
                 + (f", {len(unjudged)} not judged (their probe did not run, too little data, or no matching result: "
                    "the result says nothing about them; those that could be a warning or failure are named above)"
                    if unjudged else ""))
    return lines


def _statement_statuses(stmt: dict) -> dict[tuple[str, str], str] | None:
    """(pack, rule id) -> status, as the statement signs them (its passed, warned and failed tests and the rules
    its run configuration lists as not applicable); None when it does not say which rules were not applicable."""
    pred = stmt.get("predicate") or {}
    tests = {"pass": pred.get("passedTests"), "warn": pred.get("warnedTests"), "fail": pred.get("failedTests")}
    for c in pred.get("configuration") or []:
        if isinstance(c, dict) and c.get("name") == "faceaudit-run-config" and isinstance(c.get("annotations"), dict):
            na = c["annotations"].get("not_applicable")
            if isinstance(na, str):
                tests["not_applicable"] = na.split(", ") if na else []
    if "not_applicable" not in tests:
        return None  # a statement that lists only the rules judged cannot be compared rule by rule
    statuses = {}
    for status, names in tests.items():
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and "/" in name:
                pack, rule_id = name.split("/", 1)
                statuses[(pack, rule_id)] = status
    return statuses


def _check_verdicts(f: Path, signed: dict[tuple[str, str], str] | None) -> None:
    """Raise when ``f`` shows verdicts other than the statement's: a report made before a rule pack was applied
    again, signed with the findings that replaced its own. Compared on the packs both name (a report, or a
    statement, may cover only some of the run's packs)."""
    shown = shown_findings(f)
    if shown is None or shown.statuses is None or not signed:
        return
    if not shown.statuses:
        raise VerificationError(f"{f}: shows no findings, but the signed statement judges {len(signed)} rule(s): it "
                                "predates the findings that were signed")
    packs = {p for p, _ in shown.statuses} & {p for p, _ in signed}
    for key in sorted({k for k in (*shown.statuses, *signed) if k[0] in packs}):
        if shown.statuses.get(key) != signed.get(key):
            raise VerificationError(
                f"{f}: shows {key[0]}/{key[1]} as {shown.statuses.get(key, 'not listed')}, the signed statement as "
                f"{signed.get(key, 'not listed')}: the file predates the findings that were signed; it does not show "
                "the signed verdicts")


def _subject_key(s: dict) -> tuple[str, str]:
    return s["name"], str(s["digest"].get("sha256"))


def _check_file(f: Path, subjects: list[dict], run_id: str | None,
                signed: dict[tuple[str, str], str] | None) -> dict:
    """The signed subject ``f`` is; raises when its digest, its run or the verdicts it shows do not match."""
    digest = sha256_file(f)
    named = [s for s in subjects if s.get("name") == f.name]
    if named and all(s["digest"].get("sha256") != digest for s in named):
        why = _pdf_diagnosis(f)
        if why:
            raise VerificationError(f"{f}: {why}; it is not the PDF that was signed")
        raise VerificationError(f"{f}: SHA-256 {digest[:16]}... differs from the signed statement "
                                f"({str(named[0]['digest'].get('sha256', ''))[:16]}...): the file changed after signing")
    # the subject of its own name first: two signed files may have equal bytes under different names
    match = next((s for s in named if s["digest"].get("sha256") == digest), None) or next(
        (s for s in subjects if s["digest"].get("sha256") == digest), None)
    if match is None:
        raise VerificationError(f"{f}: not covered by this attestation (its SHA-256 is not among the signed subjects)")
    about = evidence_run(f) if run_id else None
    if about is not None and about[0] != run_id:
        raise VerificationError(f"{f}: is the report of run {bounded(about[0])}, but the statement is about run "
                                f"{bounded(run_id)}: "
                                "this attestation does not vouch for it")
    if (match.get("annotations") or {}).get("kind") == "evidence":
        _check_verdicts(f, signed)
    return match


def verify(bundle_path: str | Path, files: list[Path] | None = None, pubkey: str | Path | None = None) -> Verified:
    """Check the bundle's signature, that each file's SHA-256 equals its subject in the statement, that each
    report is of the statement's run and that the verdicts it shows are the statement's.

    Every evidence subject the statement lists is checked, each by name and digest: the given ``files`` first,
    the others are looked for beside the bundle, and any not found is an error naming it. Raises
    :class:`VerificationError` (one line) on the first thing that does not match.
    """
    bundle_path = Path(bundle_path)
    trusted = keys.load_public(pubkey) if pubkey is not None else None  # a bad key file is the first thing named
    bundle = load_bundle(bundle_path)
    env = bundle["dsseEnvelope"]
    if env.get("payloadType") != PAYLOAD_TYPE:
        raise VerificationError(f"{bundle_path}: payload type {str(env.get('payloadType'))[:80]!r} is not an "
                                "in-toto statement")
    payload = _b64(env["payload"], f"{bundle_path}: payload")
    if trusted is not None:
        public: Ed25519PublicKey = trusted
    else:
        material = bundle.get("verificationMaterial")
        key = material.get("publicKey") if isinstance(material, dict) else None
        pem = key.get("pem") if isinstance(key, dict) else None
        try:
            public = keys.public_from_pem(pem if isinstance(pem, str) else "", str(bundle_path))
        except keys.KeyFileError as exc:  # the bundle's own key is part of the bundle: a broken one is a bad bundle
            raise VerificationError(str(exc)) from None
    keyid = keys.fingerprint(public)
    for s in env["signatures"]:
        sig = _b64(s.get("sig", ""), f"{bundle_path}: signature")
        try:
            public.verify(sig, pae(PAYLOAD_TYPE, payload))
            break
        except InvalidSignature:
            continue
    else:
        who = f"the key {pubkey} ({keyid})" if pubkey else f"the bundle's own key ({keyid})"
        raise VerificationError(f"{bundle_path}: signature does not verify with {who}: the statement was altered "
                                "after signing, or another key signed it")
    try:
        stmt = json.loads(payload)
    except (ValueError, RecursionError):
        raise VerificationError(f"{bundle_path}: the signed payload is not JSON") from None
    if (not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE or stmt.get("predicateType") != PREDICATE_TYPE
            or not isinstance(stmt.get("subject"), list) or not isinstance(stmt.get("predicate"), dict)):
        raise VerificationError(f"{bundle_path}: not an in-toto v1 test-result statement")
    subjects = [s for s in stmt["subject"] if isinstance(s, dict) and isinstance(s.get("name"), str)
                and isinstance(s.get("digest"), dict)]
    run_id = _statement_run(stmt)
    signed = _statement_statuses(stmt)
    checked, covered = [], set()  # covered: (name, SHA-256) of each subject a file matched
    for f in files or []:
        match = _check_file(Path(f), subjects, run_id, signed)
        checked.append((Path(f), match["name"]))
        covered.add(_subject_key(match))
    evidence = [s for s in subjects if isinstance(s.get("annotations"), dict)
                and s["annotations"].get("kind") == "evidence"]
    names = [s["name"] for s in evidence]
    missing = []
    for s in evidence:  # each by name AND digest: a bundle that lists one name twice needs both files
        if _subject_key(s) in covered:
            continue
        beside = bundle_path.parent / Path(s["name"]).name
        match = _check_file(beside, subjects, run_id, signed) if beside.is_file() else None
        if match is not None and _subject_key(match) not in covered:
            checked.append((beside, match["name"]))
            covered.add(_subject_key(match))
        if _subject_key(s) not in covered:
            twice = names.count(s["name"]) > 1
            missing.append(s["name"] + (f" (SHA-256 {str(s['digest'].get('sha256'))[:16]}...)" if twice else ""))
    if missing:
        raise VerificationError(f"{bundle_path}: signed file(s) missing, so they cannot be checked: "
                                f"{', '.join(missing)} (put them beside the bundle or give each with --report)")
    return Verified(stmt, keyid, pubkey is not None, checked)
