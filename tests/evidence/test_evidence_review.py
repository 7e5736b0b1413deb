"""Findings of a review of the evidence path (2026-12-06): each failed before its fix."""

import os
import stat
import subprocess
import sys

import pytest

from audit.errors import ConfigError


def test_a_bundle_with_a_huge_number_is_refused_in_one_line(tmp_path):
    """Python refuses to convert a 5,000-digit integer with a ValueError that is not a JSONDecodeError: verify
    printed an 85-line traceback."""
    bad = tmp_path / "bigint.json"
    bad.write_text('{"dsseEnvelope": ' + "9" * 5000 + "}")
    out = subprocess.run([sys.executable, "-m", "audit.cli", "verify", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "not a faceaudit attestation bundle" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_damaged_pdf_is_diagnosed_whatever_pypdf_raises(tmp_path, monkeypatch):
    """pypdf raises AttributeError on some damaged object trees; the diagnosis of a file already known not to be
    the one signed must never fail (verify printed a 111-line traceback)."""
    import pypdf

    from audit.evidence.attest import _pdf_diagnosis

    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")

    class Broken:
        def __init__(self, *a, **k):
            raise AttributeError("'DictionaryObject' object has no attribute 'get_data'")

    monkeypatch.setattr(pypdf, "PdfReader", Broken)
    assert _pdf_diagnosis(pdf) == "not a readable PDF any more"


def test_the_public_key_is_not_writable_by_others_whatever_the_umask(tmp_path):
    from audit.evidence.keys import keygen

    old = os.umask(0)
    try:
        priv, pub = keygen(tmp_path / "auditor.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600 and stat.S_IMODE(pub.stat().st_mode) == 0o644


def test_a_pack_id_that_a_statement_could_not_read_back_is_refused(tmp_path):
    """A signed statement lists the rules not judged as 'pack/RULE' joined with ', ': a pack id 'acme, strict' made a
    genuine signed report fail verify ('predates the findings')."""
    from audit.errors import RuleError
    from audit.rules import load_pack

    for bad in ("acme, strict", "acme/strict"):
        p = tmp_path / "p.yaml"
        p.write_text(f'pack: "{bad}"\nrules:\n  - id: R\n    title: t\n    probe: identity\n    metric: eer\n'
                     '    fail_if: "> 0.5"\n')
        with pytest.raises(RuleError, match="field 'pack'"):
            load_pack(p)


def test_a_protocol_pins_the_recipes_split_and_the_face_detector(tmp_path):
    """A set the generator wrote from its training split (same seed, people, images) passed a sample-world pin; a
    run under a protocol could change the detector and its confidence (107 of 160 faces dropped) while the signed
    dataset subject still carried the pinned fingerprint. A protocol may pin a recipe and a fingerprint together."""
    from audit.protocol import apply, check_dataset, load_protocol

    record = {"name": "p", "dataset": {"recipe": "sample", "seed": 0, "people": 40, "images": 4}}
    check_dataset(record, "f" * 64, {"seed": 0, "people": 40, "images": 4, "split": "eval"})
    check_dataset(record, "f" * 64, {"seed": 0, "people": 40, "images": 4})  # written before split was recorded
    with pytest.raises(ConfigError, match="'split': 'eval'.*'split': 'train'"):
        check_dataset(record, "f" * 64, {"seed": 0, "people": 40, "images": 4, "split": "train"})
    p = tmp_path / "p.yaml"
    p.write_text(f"protocol: p\ndataset: {{recipe: sample, seed: 0, people: 40, images: 4, fingerprint: {'a' * 64}}}\n"
                 "probes: [identity]\nconditions: [clean]\n")
    proto = load_protocol(p)
    with pytest.raises(ConfigError, match="pins the dataset with fingerprint"):
        check_dataset(proto.record(), "b" * 64, {"seed": 0, "people": 40, "images": 4})
    for key, value in (("detector", "mtcnn"), ("min_face_confidence", 0.99)):
        with pytest.raises(ConfigError, match=f"contradicts protocol 'p'.*pins {key}"):
            apply(proto, {key: value}, {key})
    assert apply(proto, {}, set())["detector"] == "auto"


def test_results_whose_numbers_differ_from_the_store_are_not_signed(run, tmp_path):
    """attest --report signed a results JSON with every metric set to 0 (and a PDF whose embedded results were
    swapped), since only the run id, the model and the findings were compared; verify then said OK."""
    import json

    from audit import api
    from audit.errors import NotSignable

    priv, _ = api.keygen(tmp_path / "k")
    signed = api.attest_run(run["run_id"], run["db"], priv, tmp_path / "a")
    genuine = tmp_path / "results.json"
    genuine.write_bytes(signed[0].read_bytes())
    api.attest_run(run["run_id"], run["db"], priv, tmp_path / "b", reports=[genuine])  # its own results: signed
    doc = json.loads(genuine.read_text())
    doc["metrics"][0]["value"] = 0.0
    doctored = tmp_path / "doctored" / "results.json"
    doctored.parent.mkdir()
    doctored.write_text(json.dumps(doc))
    with pytest.raises(NotSignable, match=r"its results \(metrics\) differ from run"):
        api.attest_run(run["run_id"], run["db"], priv, tmp_path / "c", reports=[doctored])
    assert not (tmp_path / "c").exists()


def test_findings_judged_with_an_earlier_pack_are_not_signed(run, tmp_path):
    """A review of the change: attest signed findings an earlier baseline (and engine) had judged, under 'faceaudit
    0.3.0': 4 warnings where a fresh judgement gives 7, PASSED where the new engine finds a rule undecided."""
    import shutil

    from audit import api
    from audit.errors import NotSignable
    from audit.store import Store

    db = tmp_path / "old.duckdb"
    shutil.copy(run["db"], db)
    with Store(db) as store:
        store.con.execute("UPDATE findings SET pack_hash = ? WHERE run_id = ? AND pack = 'baseline'",
                          ["0" * 64, run["run_id"]])
    priv, _ = api.keygen(tmp_path / "k")
    with pytest.raises(NotSignable, match=r"findings of baseline were judged with another version of that pack .*"
                                          r"faceaudit report \S+ --pack baseline\)"):
        api.attest_run(run["run_id"], db, priv, tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_findings_judged_by_another_faceaudit_are_not_signed_until_judged_again(run, tmp_path):
    """The same pack text judged by an earlier faceaudit may give other verdicts (0.4.0 no longer passes a
    false-match ratio whose interval reaches the fail limit): a statement names this faceaudit, so findings stored
    by another one, or before findings recorded who judged them, are refused until judged again."""
    import shutil

    from audit import __version__, api
    from audit.errors import NotSignable
    from audit.store import Store

    db = tmp_path / "old.duckdb"
    shutil.copy(run["db"], db)
    priv, _ = api.keygen(tmp_path / "k")
    for earlier, named in (("0.3.0", "0.3.0"), ("", "before 0.4.0")):
        with Store(db) as store:
            store.con.execute("UPDATE findings SET judged_by = ? WHERE run_id = ?", [earlier, run["run_id"]])
        with pytest.raises(NotSignable, match=rf"judged by faceaudit {named}, not by this faceaudit \({__version__}\)"
                                              r".*faceaudit report \S+ --pack "):
            api.attest_run(run["run_id"], db, priv, tmp_path / "a")
        assert not (tmp_path / "a").exists()
    api.evaluate_rules(run["run_id"], db)
    with Store(db, read_only=True) as store:
        assert set(store.findings(run["run_id"])["judged_by"]) == {__version__}
    assert api.attest_run(run["run_id"], db, priv, tmp_path / "a")


def test_a_protocols_detector_file_is_the_one_beside_it(tmp_path, monkeypatch):
    """A review of the change: a protocol naming 'det.onnx' pinned that string, read from wherever the run started, so a
    campaign cell ran another folder's det.onnx under the protocol, and the same file given by its full path was
    refused. The path is resolved beside the protocol file and compared resolved."""
    from audit.protocol import apply, load_protocol

    (tmp_path / "sub").mkdir()
    (tmp_path / "other").mkdir()
    p = tmp_path / "sub" / "p.yaml"
    p.write_text("protocol: p\ndataset: {fingerprint: " + "a" * 64 + "}\nprobes: [identity]\nconditions: [clean]\n"
                 "detector: det.onnx\n")
    proto = load_protocol(p)
    beside = str((tmp_path / "sub" / "det.onnx").resolve())
    assert proto.detector == beside
    monkeypatch.chdir(tmp_path / "other")
    assert apply(proto, {}, set())["detector"] == beside  # not ./det.onnx of the folder the run starts in
    assert apply(proto, {"detector": beside}, {"detector"})["detector"] == beside
    assert apply(proto, {"detector": "../sub/det.onnx"}, {"detector"})["detector"] == beside
    with pytest.raises(ConfigError, match="contradicts protocol 'p'"):
        apply(proto, {"detector": "det.onnx"}, {"detector"})  # other/det.onnx is another file
    plain = tmp_path / "plain.yaml"
    plain.write_text("protocol: q\ndataset: {fingerprint: " + "a" * 64 + "}\nprobes: [identity]\nconditions: [clean]\n")
    with pytest.raises(ConfigError, match=r"pins detector = 'auto' \(its default: the protocol file names none\)"):
        apply(load_protocol(plain), {"detector": "mtcnn"}, {"detector"})
