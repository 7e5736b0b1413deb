"""Issue 33: generated attestation bundles (deeply nested, truncated, mutated), detector profiles and campaign
files either work or end in a FaceAuditError with a one-line message - never another exception (a 100,000-bracket
bundle gave a RecursionError box), never a traceback, never unbounded memory."""

from __future__ import annotations

import json

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from audit import api
from audit.errors import FaceAuditError
from audit.evidence.attest import PREDICATE_TYPE, STATEMENT_TYPE, Signer, sign
from tests.fuzz.test_fuzz import FUZZ, nasty, one_line_or_works, scalar, text, value


# --------------------------------------------------------------------------- bundles
@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    (root / "report.html").write_text('<p class="subtitle">Run <span class="run-id">r1</span></p>')
    stmt = {"_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE,
            "subject": [{"name": "report.html", "digest": {"sha256": "0" * 64}, "annotations": {"kind": "evidence"}}],
            "predicate": {"result": "PASSED", "configuration": [
                {"name": "faceaudit-run-config", "annotations": {"run_id": "r1"}}]}}
    valid = sign(stmt, Signer(Ed25519PrivateKey.generate(), "t"))
    return root, json.dumps(valid, indent=1)


def verify_one_line(path):
    try:
        api.verify_bundle(path)
    except FaceAuditError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip(), repr(str(exc))


@FUZZ
@given(depth=st.integers(1, 200_000), opener=st.sampled_from(["[", "{\"a\":", "[{\"dsseEnvelope\":"]),
       close=st.booleans())
def test_nested_bundles(bundle_dir, depth, opener, close):
    root, _ = bundle_dir
    path = root / "nested.intoto.json"
    closer = {"[": "]", "{\"a\":": "}", "[{\"dsseEnvelope\":": "}]"}[opener]
    path.write_text(opener * depth + ("0" + closer * depth if close else ""))
    verify_one_line(path)


@FUZZ
@given(cut=st.floats(0, 1), junk=st.one_of(st.just(""), text, nasty))
def test_truncated_bundles(bundle_dir, cut, junk):
    root, valid = bundle_dir
    path = root / "cut.intoto.json"
    path.write_text(valid[:int(len(valid) * cut)] + junk)
    verify_one_line(path)


@FUZZ
@given(where=st.sampled_from(["", "dsseEnvelope", "dsseEnvelope.payload", "dsseEnvelope.payloadType",
                              "dsseEnvelope.signatures", "verificationMaterial", "verificationMaterial.publicKey",
                              "verificationMaterial.publicKey.pem", "mediaType"]),
       replacement=st.one_of(value, scalar, st.lists(value, max_size=3)))
def test_mutated_bundles(bundle_dir, where, replacement):
    root, valid = bundle_dir
    doc = json.loads(valid)
    if where:
        *parents, last = where.split(".")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = replacement
    else:
        doc = replacement
    path = root / "mutated.intoto.json"
    path.write_text(json.dumps(doc, allow_nan=True))
    verify_one_line(path)


# --------------------------------------------------------------------------- detector profiles
@pytest.fixture(scope="module")
def detector_dir(tmp_path_factory):
    from tests.detect.test_retinaface import planted_model

    return planted_model(tmp_path_factory.mktemp("detector") / "det.onnx").parent


det_size = st.one_of(st.lists(st.one_of(st.sampled_from([64, 0, -1, 100_000, 2**40]), st.integers(-5, 5000), text,
                                        st.floats()), max_size=3), scalar)
detector_doc = st.fixed_dictionaries(
    {"kind": st.one_of(st.just("detector"), scalar), "format": st.one_of(st.sampled_from(["retinaface", "scrfd"]),
                                                                         text, scalar)},
    optional={"name": st.one_of(text, nasty, scalar),
              "input": st.fixed_dictionaries({}, optional={
                  "name": st.one_of(st.just("input0"), text), "size": det_size,
                  "layout": st.one_of(st.sampled_from(["NCHW", "NHWC"]), text), "color": st.sampled_from(["RGB", "BGR"]),
                  "mean": st.lists(st.floats(), max_size=4), "std": st.lists(st.floats(), max_size=4)}),
              "outputs": st.one_of(st.fixed_dictionaries({}, optional={
                  "boxes": st.sampled_from(["loc", "x"]), "scores": st.sampled_from(["conf", "y"]),
                  "landmarks": st.sampled_from(["landms", "z"])}), st.lists(text, max_size=3), scalar),
              "anchors": st.one_of(st.fixed_dictionaries({}, optional={
                  "steps": st.lists(st.integers(-2, 64), max_size=4),
                  "min_sizes": st.lists(st.lists(st.floats(-1, 600), max_size=3), max_size=4),
                  "variances": st.lists(st.floats(), max_size=3)}), scalar),
              "strides": st.lists(st.integers(-2, 64), max_size=4), "num_anchors": st.integers(-2, 4),
              "nms_threshold": scalar, "min_score": scalar, "extra": value})


@FUZZ
@given(doc=st.one_of(detector_doc, value), raw=st.one_of(st.none(), st.binary(max_size=60)))
def test_detector_profiles(detector_dir, doc, raw):
    import numpy as np

    from audit.intake.resolve import resolve_detector

    path = detector_dir / "det.profile.yaml"
    path.write_bytes(raw if raw is not None else yaml.safe_dump(doc, allow_unicode=True).encode())
    det = one_line_or_works(lambda: resolve_detector(str(detector_dir / "det.onnx")))
    if det is not None:  # a profile that loads also detects (or refuses in one line) on a photo
        one_line_or_works(lambda: det.detect(np.zeros((48, 80, 3), np.uint8)))


# --------------------------------------------------------------------------- campaign files
@pytest.fixture(scope="module")
def campaign_dir(tmp_path_factory, small_data):
    from tests.builders import make_onnx

    root = tmp_path_factory.mktemp("campaign")
    (root / "m").mkdir()
    make_onnx(root / "m" / "a.onnx")
    (root / "m" / "broken.onnx").write_bytes(b"not onnx")
    return root, small_data


path_ref = st.one_of(st.sampled_from(["m/", "m/a.onnx", "m/../m/a.onnx", "m/broken.onnx", "nope.onnx", "sample",
                                      "DATA", "DATA/manifest.csv", "baseline", "packs/x.yaml", "/", "..", ""]),
                     nasty, text)
campaign_doc = st.fixed_dictionaries(
    {"campaign": st.one_of(st.just("c"), text, scalar), "models": st.one_of(st.lists(path_ref, max_size=3), scalar),
     "datasets": st.one_of(st.lists(path_ref, max_size=3), scalar)},
    optional={"preset": st.one_of(st.sampled_from(["quick", "fast"]), scalar), "seed": scalar,
              "probes": st.one_of(st.lists(st.sampled_from(["leakage", "identity", "bogus"]), max_size=3), scalar),
              "conditions": st.one_of(st.lists(st.one_of(nasty, text), max_size=3), scalar),
              "attributes": st.one_of(st.lists(st.one_of(st.just("sex"), nasty, text), max_size=3), scalar),
              "packs": st.one_of(st.lists(path_ref, max_size=3), scalar), "evaluator": path_ref,
              "surrogates": st.one_of(st.lists(path_ref, max_size=2), scalar), "detector": path_ref,
              "min_face_confidence": scalar, "device": scalar, "attack_precision": scalar, "extra": value})


@FUZZ
@given(doc=st.one_of(campaign_doc, value), raw=st.one_of(st.none(), st.binary(max_size=60)))
def test_campaign_files(campaign_dir, doc, raw):
    from audit.executors import load_campaign

    root, data = campaign_dir
    path = root / "c.yaml"
    if raw is not None:
        path.write_bytes(raw)
    else:
        text_ = yaml.safe_dump(doc, allow_unicode=True).replace("DATA", str(data))
        path.write_text(text_, encoding="utf-8", errors="surrogatepass")

    def go():
        camp = load_campaign(path)
        return api.campaign_cells(camp)
    one_line_or_works(go)
