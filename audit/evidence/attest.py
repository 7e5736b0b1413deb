"""Signed attestations: an in-toto Statement (v1) with the test-result predicate, in a DSSE
envelope signed with Ed25519, and its verification.

Subjects are what the attestation vouches for: the model file (its SHA-256), the dataset (its
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
from audit.errors import FaceAuditError
from audit.evidence import keys
from audit.evidence.dataset import DETECTED_ID, FINGERPRINT, dataset_identity
from audit.atomic import write_atomic

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPE = "application/vnd.faceaudit.attestation+json;version=1"
RESULTS_ATTACHMENT = "faceaudit-results.json"
"""Name of the JSON results embedded in every PDF report (equal to ``faceaudit export RUN``)."""


class VerificationError(FaceAuditError):
    """The signature, the statement or a file does not match: the evidence cannot be trusted."""

    exit_code = 1


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


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


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


def statement(run: dict, findings: pd.DataFrame, files: list[Path], signer: Signer) -> dict:
    """The in-toto Statement for a stored run (``run`` as returned by ``Store.run``)."""
    subjects = [
        {"name": Path(run["model_path"]).name, "digest": {"sha256": run["model_id"]},
         "annotations": {"kind": "model", "model_name": run["model_name"]}},
        _dataset_subject(run),
    ]
    subjects += [{"name": p.name, "digest": {"sha256": sha256_file(p)}, "annotations": {"kind": "evidence"}}
                 for p in files]
    by_status = {s: sorted(f"{r.pack}/{r.rule_id}" for r in findings.itertuples() if r.status == s)
                 for s in ("pass", "warn", "fail", "not_applicable")}
    result = "FAILED" if by_status["fail"] else "WARNED" if by_status["warn"] else "PASSED"
    config = run["config"]
    configuration = [{
        "name": "faceaudit-run-config", "mediaType": "application/json",
        "digest": {"sha256": hashlib.sha256(_canonical(config)).hexdigest()},
        "content": base64.b64encode(_canonical(config)).decode(),
        "annotations": {"run_id": run["run_id"], "seed": str(run["seed"]), "preset": str(config.get("preset")),
                        "tool": f"faceaudit {audit.__version__}", "signer": signer.name,
                        "signed_at": signer.signed_at, "not_applicable": ", ".join(by_status["not_applicable"])}}]
    packs = findings[["pack", "pack_version", "pack_hash"]].drop_duplicates().sort_values("pack")
    configuration += [{"name": f"rule-pack:{p.pack}@{p.pack_version}", "digest": {"sha256": p.pack_hash}}
                      for p in packs.itertuples() if p.pack_hash]
    return {"_type": STATEMENT_TYPE, "subject": subjects, "predicateType": PREDICATE_TYPE,
            "predicate": {"result": result, "configuration": configuration, "passedTests": by_status["pass"],
                          "warnedTests": by_status["warn"], "failedTests": by_status["fail"]}}


def sign(stmt: dict, signer: Signer) -> dict:
    """A faceaudit bundle: the DSSE envelope plus the signer's public key (for convenience only)."""
    payload = _canonical(stmt)
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
    from pypdf.errors import PyPdfError

    try:
        attachments = PdfReader(path).attachments
    except (PyPdfError, OSError, ValueError, KeyError):
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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VerificationError(f"{path}: not a faceaudit attestation bundle ({str(exc).splitlines()[0][:120]})") \
            from None
    env = bundle.get("dsseEnvelope") if isinstance(bundle, dict) else None
    if not isinstance(env, dict) or not isinstance(env.get("signatures"), list) or not env["signatures"]:
        raise VerificationError(f"{path}: not a faceaudit attestation bundle (no signed DSSE envelope)")
    return bundle


def verify(bundle_path: str | Path, files: list[Path] | None = None, pubkey: str | Path | None = None) -> Verified:
    """Check the bundle's signature and that each file's SHA-256 equals its subject in the statement.

    Without ``files``, every evidence subject found beside the bundle is checked. Raises
    :class:`VerificationError` (one line) on the first thing that does not match.
    """
    bundle_path = Path(bundle_path)
    trusted = keys.load_public(pubkey) if pubkey is not None else None  # a bad key file is the first thing named
    bundle = load_bundle(bundle_path)
    env = bundle["dsseEnvelope"]
    if env.get("payloadType") != PAYLOAD_TYPE:
        raise VerificationError(f"{bundle_path}: payload type {env.get('payloadType')!r} is not an in-toto statement")
    payload = _b64(env.get("payload", ""), f"{bundle_path}: payload")
    if trusted is not None:
        public: Ed25519PublicKey = trusted
    else:
        pem = (bundle.get("verificationMaterial") or {}).get("publicKey", {}).get("pem", "")
        public = keys.public_from_pem(pem, str(bundle_path))
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
    except json.JSONDecodeError:
        raise VerificationError(f"{bundle_path}: the signed payload is not JSON") from None
    if stmt.get("_type") != STATEMENT_TYPE or stmt.get("predicateType") != PREDICATE_TYPE:
        raise VerificationError(f"{bundle_path}: not an in-toto v1 test-result statement")
    subjects = [s for s in stmt.get("subject", []) if isinstance(s, dict)]
    if files is None:
        files = [bundle_path.parent / s["name"] for s in subjects
                 if (s.get("annotations") or {}).get("kind") == "evidence" and (bundle_path.parent / s["name"]).is_file()]
    checked = []
    for f in files:
        f = Path(f)
        digest = sha256_file(f)
        named = [s for s in subjects if s.get("name") == f.name]
        if named and all(s.get("digest", {}).get("sha256") != digest for s in named):
            why = _pdf_diagnosis(f)
            if why:
                raise VerificationError(f"{f}: {why}; it is not the PDF that was signed")
            raise VerificationError(f"{f}: SHA-256 {digest[:16]}... differs from the signed statement "
                                    f"({named[0]['digest'].get('sha256', '')[:16]}...): the file changed after signing")
        match = next((s for s in subjects if s.get("digest", {}).get("sha256") == digest), None)
        if match is None:
            raise VerificationError(f"{f}: not covered by this attestation (its SHA-256 is not among the signed "
                                    "subjects)")
        checked.append((f, match["name"]))
    return Verified(stmt, keyid, pubkey is not None, checked)
