"""Evidence that stands on its own: machine-readable exports, signed in-toto attestations,
verification, and a gate for CI pipelines."""

from audit.evidence.attest import Signer, VerificationError, Verified, sign, statement, verify
from audit.evidence.export import dumps, results_document, schema
from audit.evidence.gate import GateResult, judge, junit_xml
from audit.evidence.keys import fingerprint, keygen

__all__ = ["Signer", "VerificationError", "Verified", "sign", "statement", "verify", "dumps", "results_document",
           "schema", "GateResult", "judge", "junit_xml", "fingerprint", "keygen"]
