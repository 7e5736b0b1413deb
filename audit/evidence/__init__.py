"""Standalone evidence (exports, in-toto attestations, verify, CI gate); imports probes, rules and below."""

from audit.evidence.attest import Signer, VerificationError, Verified, sign, statement, verify
from audit.evidence.export import dumps, results_document, schema
from audit.evidence.gate import GateResult, judge, junit_xml
from audit.evidence.keys import fingerprint, keygen

__all__ = ["Signer", "VerificationError", "Verified", "sign", "statement", "verify", "dumps", "results_document",
           "schema", "GateResult", "judge", "junit_xml", "fingerprint", "keygen"]
