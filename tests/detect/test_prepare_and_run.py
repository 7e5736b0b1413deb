"""`faceaudit prepare` round trip, and a whole run on raw photos: FTA in the store and the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audit import api
from audit.data import ARCFACE_TEMPLATE
from audit.intake import load
from audit.store import Store
from tests.detect.photos import photo_dataset
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return photo_dataset(tmp_path_factory.mktemp("photos") / "data")


def test_prepare_round_trip(photos, tmp_path):
    out = tmp_path / "aligned"
    code, text = run_cli("prepare", photos, "--out", out)
    assert code == 0, text
    assert "24 aligned faces of 8 people" in text and "2 failed to acquire" in text
    m = pd.read_csv(out / "manifest.csv")
    src = pd.read_csv(photos / "manifest.csv")
    assert list(m.columns[:3]) == ["image", "subject", "group"] and "lm0_x" in m.columns
    assert set(m["image"]) == {i.rsplit(".", 1)[0] + ".png" for i in src["image"] if "blank" not in i}
    assert np.allclose(m[["lm0_x", "lm0_y"]].to_numpy(), ARCFACE_TEMPLATE[0], atol=1e-3)
    q = pd.read_csv(out / "quality.csv")
    assert sorted(q["problem"]) == ["no_face", "no_face"] and set(q["image"]) == {"p0/blank.png", "p1/blank.png"}
    assert json.loads((out / "prepare.json").read_text())["detector"]["name"] == "mtcnn"
    # The copy loads back as a dataset (landmarks from its manifest, no detection) with the same faces.
    again = load(out)
    assert not again.uses_detector
    faces = again.faces()
    assert len(faces.rows) == 24 and not faces.issues
    original = load(photos).faces()
    assert np.abs(faces.images.astype(float) - original.images.astype(float)).mean() < 1.0
    # Never over a non-empty folder.
    code, text = run_cli("prepare", photos, "--out", out)
    assert code == 2 and "not empty" in text and "\n" not in text.strip()


@pytest.mark.slow
def test_run_on_raw_photos_measures_failure_to_acquire(photos, tmp_path, tiny_model):
    db = tmp_path / "s.duckdb"
    code, text = run_cli("run", "--model", tiny_model, "--data", photos, "--probes", "identity", "--conditions",
                         "clean", "--db", db, "--pack", "baseline", "--min-face-confidence", "0.95")
    assert code == 0, text
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run("latest")
        run = store.run(run_id)
        fta = store.metrics(run_id).query("probe == 'acquisition' and metric == 'fta_rate'")
        quality = store.data_quality(run["dataset_id"])
    overall = fta[fta["attribute"] == ""].iloc[0]
    assert overall["value"] == pytest.approx(2 / 26) and overall["n"] == 26
    assert overall["ci_low"] <= overall["value"] <= overall["ci_high"] < 1
    groups = fta[fta["attribute"] == "group"].set_index("group")
    assert set(groups.index) == {"a", "b"} and groups.loc["a", "n"] == 13
    assert sorted(quality["problem"]) == ["no_face", "no_face"]
    assert run["config"]["detector"] == "auto" and run["config"]["min_face_confidence"] == 0.95
    assert run["config"]["inputs"]["detector"].startswith("mtcnn:")
    # The plain file fingerprint is recorded beside the dataset id (which hashes the detector key in).
    fingerprint = load(photos).fingerprint
    assert run["config"]["inputs"]["files"] == fingerprint != run["dataset_id"]
    files = api.build_report(run_id, db, tmp_path / "r", ["html", "pdf"])
    html = files[0].read_text()
    assert "Failure-to-acquire rate: 7.7%" in html and "failed to acquire" in html
    assert "--min-face-confidence 0.95" in html
    assert fingerprint in html and "SHA-256 of the file fingerprint and the face detector key" in html
    assert "worst first" in html and "at most two per person" in html
    assert files[1].stat().st_size > 0
    no_faces = api.build_report(run_id, db, tmp_path / "r2", ["html"], no_faces=True)[0].read_text()
    assert "Failure-to-acquire rate" in no_faces and "photos in which no usable face" not in no_faces
    # A second run finds every landmark in the cache; '--detector none' is another dataset (no FTA).
    code, text = run_cli("run", "--model", tiny_model, "--data", photos, "--probes", "identity", "--conditions",
                         "clean", "--db", db, "--detector", "none")
    assert code == 0, text
    with Store(db, read_only=True) as store:
        runs = store.runs()
        newest = store.run(runs["run_id"].iloc[0])
        assert newest["dataset_id"] != run["dataset_id"] and "detector" not in newest["config"]["inputs"]
        assert store.metrics(newest["run_id"]).query("probe == 'acquisition'").empty


def test_bad_detector_option_is_one_line(photos, tmp_path, tiny_model):
    for value, msg in (("haar", "--detector: expected auto, none, mtcnn"), (str(tmp_path / "no.onnx"), "no such file")):
        code, text = run_cli("run", "--model", tiny_model, "--data", photos, "--db", tmp_path / "s.duckdb",
                             "--detector", value)
        assert code == 2 and msg in text and "\n" not in text.strip(), text
    code, text = run_cli("run", "--model", tiny_model, "--data", photos, "--db", tmp_path / "s.duckdb",
                         "--min-face-confidence", "1.5")
    assert code == 2 and "--min-face-confidence" in text
    assert not (tmp_path / "s.duckdb").exists()


def leftovers(parent, name):
    return [p.name for p in parent.iterdir() if p.name == name or p.name.startswith(f".{name}.partial-")]


def test_failing_prepare_leaves_no_out_folder(photos, tmp_path, monkeypatch):
    import audit.intake.prepare as prep

    calls = []

    def fail_on_third(path, data, **kw):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if interrupted half-way
        return real(path, data, **kw)

    real = prep.write_atomic
    monkeypatch.setattr(prep, "write_atomic", fail_on_third)
    with pytest.raises(KeyboardInterrupt):
        api.prepare(str(photos), tmp_path / "aligned")
    assert leftovers(tmp_path, "aligned") == []
    # An existing empty --out stays as it was.
    (tmp_path / "empty").mkdir()
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        api.prepare(str(photos), tmp_path / "empty")
    assert leftovers(tmp_path, "empty") == ["empty"] and not any((tmp_path / "empty").iterdir())
    # Without the fault, the empty folder is replaced by the complete copy.
    monkeypatch.setattr(prep, "write_atomic", real)
    res = api.prepare(str(photos), tmp_path / "empty")
    assert res.images == 24 and (tmp_path / "empty" / "manifest.csv").is_file()
    assert leftovers(tmp_path, "empty") == ["empty"]


def test_prepare_with_no_usable_photo_is_one_line_and_writes_nothing(tmp_path):
    from tests.detect.photos import noise, write_rgb

    data = tmp_path / "data"
    for i in range(2):
        write_rgb(data / f"{i}.png", noise(64, 64, i))
    pd.DataFrame({"image": ["0.png", "1.png"], "subject": ["a", "b"]}).to_csv(data / "manifest.csv", index=False)
    code, text = run_cli("prepare", data, "--out", tmp_path / "aligned")
    assert code == 2 and "none of the 2 images could be used" in text and "no face" in text, text
    assert "\n" not in text.strip() and leftovers(tmp_path, "aligned") == []


def test_prepare_refuses_an_out_folder_inside_the_source(photos):
    for out in (photos / "aligned", photos):
        code, text = run_cli("prepare", photos, "--out", out)
        assert code == 2 and ("inside the source dataset folder" in text or "not empty" in text), text
        assert "\n" not in text.strip()
    assert not (photos / "aligned").exists()
    code, text = run_cli("prepare", photos / "manifest.csv", "--out", photos / "p0" / "x")
    assert code == 2 and "inside the source dataset folder" in text


def _tiny_set(root, sizes):
    import cv2

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, side in enumerate(sizes):
        cv2.imwrite(str(root / f"{i}.png"), rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
    pd.DataFrame({"image": [f"{i}.png" for i in range(len(sizes))],
                  "subject": [f"p{i // 2}" for i in range(len(sizes))]}).to_csv(root / "manifest.csv", index=False)
    return root


def test_prepare_records_tiny_and_unreadable_photos_and_cleans_stale_partials(tmp_path, monkeypatch):
    """Issue 33 items 13 and 18: a 1x1 PNG was upscaled and accepted as a face; one unreadable photo stopped
    prepare; a killed prepare's .NAME.partial-* folders piled up."""
    import os

    from audit.errors import DatasetError

    data = _tiny_set(tmp_path / "data", [112, 112, 1, 112])
    real = np.fromfile

    def fromfile(path, *a, **k):
        if str(path).endswith("3.png"):
            raise PermissionError(13, "Permission denied")  # as a photo with mode 000 for a non-root user
        return real(path, *a, **k)
    monkeypatch.setattr("audit.data.images.np.fromfile", fromfile)
    dead = tmp_path / ".aligned.partial-999999999-0123456789ab"
    mine = tmp_path / f".aligned.partial-{os.getpid()}-0123456789ab"
    dead.mkdir()
    mine.mkdir()
    res = api.prepare(str(data), tmp_path / "aligned", detector="none")
    assert (res.images, res.failed, res.other) == (2, 1, 1)
    q = pd.read_csv(tmp_path / "aligned" / "quality.csv").set_index("image")
    assert q.loc["2.png", "problem"] == "too_small" and "1x1 pixels" in q.loc["2.png", "detail"]
    assert q.loc["3.png", "problem"] == "unreadable" and "Permission denied" in q.loc["3.png", "detail"]
    assert not dead.exists() and mine.exists()  # a running prepare's folder is left alone
    with pytest.raises(DatasetError, match="none of the 2 images could be used"):
        api.prepare(str(_tiny_set(tmp_path / "bad", [1, 2])), tmp_path / "out2", detector="none")
    assert not (tmp_path / "out2").exists()


def test_prepare_quality_list_never_holds_a_spreadsheet_formula(tmp_path):
    """prepare's quality.csv, the list a person opens in a spreadsheet, wrote an image named '=HYPERLINK(...)' raw
    (the report's CSV already neutralised it)."""
    data = _tiny_set(tmp_path / "data", [112, 112, 1, 112])
    (data / "2.png").rename(data / '=HYPERLINK("x").png')
    m = pd.read_csv(data / "manifest.csv")
    m.loc[2, "image"] = '=HYPERLINK("x").png'
    m.to_csv(data / "manifest.csv", index=False)
    api.prepare(str(data), tmp_path / "aligned", detector="none")
    q = pd.read_csv(tmp_path / "aligned" / "quality.csv", keep_default_na=False)
    assert q["image"].tolist() == ["'=HYPERLINK(\"x\").png"] and q["problem"].tolist() == ["too_small"]


def test_prepare_writes_only_inside_its_out_folder_whatever_the_manifest_spells(tmp_path):
    """A review of the input handling: a manifest path '../ds/0.png' (inside the dataset folder 'ds', seen from
    above it) was written through its '..': the aligned copy replaced the source photo, and the prepared manifest
    pointed outside its own folder. Two spellings of one name overwrote each other. Now every copy lands inside --out
    under the path the root resolves, each under its own name, and the source is untouched."""
    import hashlib

    data = _tiny_set(tmp_path / "ds", [112, 112, 112, 112])
    (data / "img").mkdir()
    (data / "0.png").rename(data / "img" / "a.jpg")  # a PNG named .jpg: decoded by content
    (data / "1.png").rename(data / "img" / "a.png")
    pd.DataFrame({"image": ["../ds/img/a.jpg", "x/../img/a.png", "../ds/2.png", "3.png"],
                  "subject": ["p0", "p0", "p1", "p1"]}).to_csv(data / "manifest.csv", index=False)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in data.rglob("*") if p.is_file()}
    res = api.prepare(str(data), tmp_path / "aligned", detector="none")
    assert res.images == 4
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in data.rglob("*") if p.is_file()} == before
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.png") if not p.is_relative_to(data))
    m = pd.read_csv(tmp_path / "aligned" / "manifest.csv")
    assert sorted(m["image"]) == ["2.png", "3.png", "img/a.png", "img/a.png.png"]
    assert written == sorted(f"aligned/{i}" for i in m["image"])
    assert len(load(str(tmp_path / "aligned")).manifest) == 4  # the copy loads
    # an annexed photo (a link into the dataset's object store, as DataLad or git-annex keep them) keeps its name
    annex = data / ".git" / "annex" / "objects"
    annex.mkdir(parents=True)
    (data / "3.png").rename(annex / "SHA256E-s1--abc.png")
    (data / "3.png").symlink_to(annex / "SHA256E-s1--abc.png")
    res = api.prepare(str(data), tmp_path / "aligned2", detector="none")
    assert sorted(pd.read_csv(tmp_path / "aligned2" / "manifest.csv")["image"]) == sorted(m["image"])
