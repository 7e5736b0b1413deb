"""Evidence names the file fingerprint as the fingerprint, and a face detector's key (and the dataset id that
hashes it in) apart: attestation subject, JUnit properties, export, report."""

import json
import xml.etree.ElementTree as ET

import jsonschema
import pandas as pd

import audit
from audit.evidence import schema
from audit.evidence.attest import Signer, statement
from audit.evidence.dataset import dataset_identity
from audit.evidence.gate import judge, junit_xml

FILES, DID, KEY = "a" * 64, "b" * 64, "mtcnn:" + "c" * 64 + ':{"detection_version":2};min_confidence=0.9'


def detector_run(files=FILES):
    inputs = {"model": "d" * 64, "dataset": DID, "detector": KEY, **({"files": files} if files else {})}
    return {"run_id": "r1", "status": "completed", "model_path": "/m/vendor.onnx", "model_id": "d" * 64, "model_name": "vendor",
            "dataset_name": "photos", "dataset_id": DID, "seed": 0, "config": {"preset": "quick", "inputs": inputs},
            "environment": {"faceaudit": audit.__version__}}


FINDINGS = pd.DataFrame([{"pack": "p", "pack_version": "1", "pack_hash": "e" * 64, "rule_id": "R1", "title": "t",
                          "status": "pass", "severity": "low", "message": "ok", "refs": "[]",
                          "judged_by": audit.__version__}])


def test_identity_of_runs_with_and_without_a_detector():
    assert dataset_identity(detector_run()) == {"id": DID, "fingerprint": FILES, "detector": KEY}
    plain = {**detector_run(), "config": {"inputs": {"dataset": DID}}}
    assert dataset_identity(plain) == {"id": DID, "fingerprint": DID, "detector": None}
    assert dataset_identity(detector_run(files=None))["fingerprint"] is None  # stored before 'files' existed


def test_attestation_digest_is_the_file_fingerprint_and_the_detector_is_annotated():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stmt = statement(detector_run(), FINDINGS, [], Signer(Ed25519PrivateKey.generate(), "t"))
    ds = next(s for s in stmt["subject"] if s["annotations"]["kind"] == "dataset")
    assert ds["digest"]["sha256"] == FILES
    assert ds["annotations"]["fingerprint"].startswith("SHA-256 over the manifest")
    assert ds["annotations"]["face_detector"] == KEY and ds["annotations"]["dataset_id"] == DID
    # An older run without the recorded fingerprint says so instead of calling the id a fingerprint.
    old = statement(detector_run(files=None), FINDINGS, [], Signer(Ed25519PrivateKey.generate(), "t"))
    ds = next(s for s in old["subject"] if s["annotations"]["kind"] == "dataset")
    assert ds["digest"]["sha256"] == DID and ds["annotations"]["fingerprint"].startswith("not recorded")


def test_junit_properties_name_fingerprint_dataset_id_and_detector_apart():
    root = ET.fromstring(junit_xml(judge(FINDINGS, "fail"), detector_run()))
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["dataset_fingerprint"] == FILES and props["dataset_id"] == DID and props["face_detector"] == KEY


def test_schema_takes_the_new_dataset_fields():
    dataset = {"id": DID, "fingerprint": FILES, "detector": KEY, "name": "x", "source": "y", "n_images": 1,
               "n_subjects": 1, "attributes": {}}
    part = {**schema()["properties"]["dataset"], "$defs": schema()["$defs"]}
    jsonschema.validate(dataset, part)
    jsonschema.validate({**dataset, "fingerprint": None, "detector": None}, part)
    assert json.dumps(schema())  # still one document
