"""Datasets of raw photos: detection, the choice of face, failures to acquire, odd photos, the cache."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from audit.data import ARCFACE_TEMPLATE, load
from audit.intake.acquire import choose
from audit.intake.detectors import Detection
from tests.detect.photos import GRACE_BOX, astronaut, face_crop, grace, noise, pasted, write_rgb


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def manifest(root, names, subjects=None):
    pd.DataFrame({"image": names, "subject": subjects or [f"s{i}" for i in range(len(names))]}).to_csv(
        root / "manifest.csv", index=False)
    return root


def by_problem(faces):
    return {i.image: i.problem for i in faces.issues}


def test_two_faces_largest_is_used_and_recorded(tmp_path, cache):
    big = face_crop(grace(), GRACE_BOX)
    img = noise(500, 900, 3)
    img[40:40 + big.shape[0], 20:20 + big.shape[1]] = big                        # Grace, large
    small = cv2.resize(face_crop(astronaut(), (182, 63, 87, 111)), None, fx=1.2, fy=1.2)
    img[150:150 + small.shape[0], 600:600 + small.shape[1]] = small               # the astronaut, smaller
    write_rgb(tmp_path / "two.jpg", img)
    write_rgb(tmp_path / "one.jpg", grace())
    faces = load(manifest(tmp_path, ["two.jpg", "one.jpg"])).faces()
    assert faces.rows.tolist() == [0, 1]  # still used
    issue = next(i for i in faces.issues if i.image == "two.jpg")
    assert issue.problem == "multiple_faces" and "largest is used" in issue.detail
    # The face used is Grace's: her aligned face matches the aligned single-face photo.
    diff = np.abs(faces.images[0].astype(float) - faces.images[1].astype(float)).mean()
    assert diff < 25


def test_noise_and_blank_become_no_face(tmp_path, cache):
    write_rgb(tmp_path / "noise.png", noise(300, 300, 1))
    write_rgb(tmp_path / "blank.png", np.full((300, 300, 3), 200, np.uint8))
    write_rgb(tmp_path / "face.jpg", grace())
    ds = load(manifest(tmp_path, ["noise.png", "blank.png", "face.jpg"]))
    faces = ds.faces()
    assert faces.rows.tolist() == [2]
    assert by_problem(faces) == {"noise.png": "no_face", "blank.png": "no_face"}
    acq = ds.acquisition()
    assert acq.attempted.sum() == 3 and acq.failed.tolist() == [True, True, False]


def test_confidence_threshold_gives_low_confidence(tmp_path, cache):
    write_rgb(tmp_path / "face.jpg", grace())
    write_rgb(tmp_path / "face2.jpg", astronaut())
    # MTCNN scores Grace 0.99998 and the astronaut (as a JPEG) 0.9999.
    faces = load(manifest(tmp_path, ["face.jpg", "face2.jpg"]), min_confidence=0.9999).faces()
    assert faces.rows.tolist() == [0] and by_problem(faces) == {"face2.jpg": "low_confidence"}
    detail = faces.issues[0].detail
    assert "best confidence 0.999" in detail and "below the threshold 0.9999" in detail


def test_choose_prefers_the_largest_confident_face():
    def face(w, conf):
        return Detection((0, 0, w, w), conf, ((1, 1), (3, 1), (2, 2), (1, 3), (3, 3)))
    chosen, problem, _ = choose([face(10, 0.99), face(50, 0.5), face(30, 0.95)], 0.9)
    assert chosen.box[2] == 30 and problem == "multiple_faces"
    assert choose([face(50, 0.5)], 0.9)[1] == "low_confidence"
    assert choose([], 0.9)[1] == "no_face"


def test_odd_photos_are_detected_or_recorded_never_a_traceback(tmp_path, cache):
    g = grace()
    crop = face_crop(g, GRACE_BOX)
    border = noise(400, 400, 2)
    border[-200:, -150:] = cv2.resize(crop, (150, 200))[:, :]            # face cut by the right/bottom edge
    border[-200:, -40:] = 0                                              # and part of it missing
    write_rgb(tmp_path / "border.jpg", border)
    rot = cv2.warpAffine(g, cv2.getRotationMatrix2D((256, 300), 30, 1.0), (512, 600), borderMode=cv2.BORDER_REFLECT)
    write_rgb(tmp_path / "rotated30.jpg", rot)
    Image.fromarray(g).convert("L").save(tmp_path / "gray.jpg")
    Image.fromarray(g).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(g).convert("RGBA").save(tmp_path / "rgba.png")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff garbage")
    names = ["border.jpg", "rotated30.jpg", "gray.jpg", "cmyk.jpg", "rgba.png", "junk.jpg"]
    ds = load(manifest(tmp_path, names))
    faces = ds.faces()
    used = {names[r] for r in faces.rows}
    problems = by_problem(faces)
    assert used | set(problems) == set(names)
    assert problems["junk.jpg"] == "unreadable"
    assert {"gray.jpg", "cmyk.jpg", "rgba.png"} <= used, problems
    # The rotated face is found and rotated back: the eyes land on the template.
    if "rotated30.jpg" in used:
        pts = faces.landmarks[list(faces.rows).index(names.index("rotated30.jpg"))]
        assert np.abs(pts[:2] - ARCFACE_TEMPLATE[:2]).max() < 4
    for name in ("border.jpg", "rotated30.jpg"):
        assert name in used or problems[name] in ("no_face", "low_confidence")
    print({n: ("used" if n in used else problems[n]) for n in names})


def test_second_load_reads_the_cache_and_does_not_detect(tmp_path, cache):
    write_rgb(tmp_path / "a.jpg", grace())
    write_rgb(tmp_path / "b.jpg", noise(200, 200, 4))
    root = manifest(tmp_path, ["a.jpg", "b.jpg"])
    first = load(root)
    a1 = first.acquisition()
    assert a1.detected == 2 and a1.cache_hits == 0
    second = load(root)
    a2 = second.acquisition()
    assert a2.detected == 0 and a2.cache_hits == 2
    assert np.array_equal(a1.landmarks, a2.landmarks, equal_nan=True)
    assert second.dataset_id == first.dataset_id
    # Entries are whole JSON files named by image hash, no temporary files left behind.
    entries = list(cache.rglob("*.json"))
    assert len(entries) == 2 and not list(cache.rglob("*.partial"))
    doc = json.loads(entries[0].read_text())
    assert doc["image"] in entries[0].name and "mtcnn:" in doc["detector"]
    # A corrupt entry is ignored and recomputed; a changed threshold needs no detection.
    entries[0].write_text("{ half")
    assert load(root).acquisition().detected == 1
    third = load(root, min_confidence=0.5)
    assert third.acquisition().detected == 0 and third.dataset_id != first.dataset_id


def test_unwritable_cache_only_costs_speed(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("FACEAUDIT_CACHE", str(blocker))
    write_rgb(tmp_path / "d" / "a.jpg", grace())
    faces = load(manifest(tmp_path / "d", ["a.jpg"])).faces()
    assert len(faces.rows) == 1


def test_detector_setting_decides_where_landmarks_come_from(tmp_path, cache, small_data):
    write_rgb(tmp_path / "a.jpg", grace())
    root = manifest(tmp_path, ["a.jpg"])
    assert load(root).uses_detector and not load(root, "none").uses_detector
    # 'none' keeps the old behaviour: the photo is resized as if it were an aligned face.
    faces = load(root, "none").faces()
    assert faces.images.shape == (1, 112, 112, 3) and not faces.issues
    assert load(root, "none").dataset_id == load(root, "none").fingerprint != load(root).dataset_id
    # A dataset with landmarks uses them under 'auto' (the sample world is unchanged) ...
    sample = load(small_data)
    assert not sample.uses_detector and sample.dataset_id == sample.fingerprint
    # ... and an explicit detector overrides them.
    assert load(small_data, "mtcnn").uses_detector


def test_all_photos_failing_is_one_line_with_a_hint(tmp_path, cache):
    from audit.errors import DatasetError

    write_rgb(tmp_path / "a.png", np.full((112, 112, 3), 90, np.uint8))
    with pytest.raises(DatasetError, match=r"could be read or used .*no face.*--detector none"):
        load(manifest(tmp_path, ["a.png"])).faces()
