"""Datasets of raw photos: detection, the choice of face, failures to acquire, odd photos, the cache."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from audit.data import ARCFACE_TEMPLATE
from audit.intake import load
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
    assert used == {"border.jpg", "rotated30.jpg", "gray.jpg", "cmyk.jpg", "rgba.png"}, problems
    # The rotated face is found and rotated back: the eyes land on the template.
    pts = faces.landmarks[list(faces.rows).index(names.index("rotated30.jpg"))]
    assert np.abs(pts[:2] - ARCFACE_TEMPLATE[:2]).max() < 4


def test_a_truncated_or_tiny_photo_is_recorded_as_such_and_a_tiny_one_fails_to_acquire(tmp_path, cache):
    """A truncated JPEG was recorded as 'bad_landmarks' (the detector's absent points were checked before the file
    was decoded again) and a 20x20 photo too, outside the failure-to-acquire rate: 1/3 here instead of 2/3."""
    write_rgb(tmp_path / "face.jpg", grace())
    data = (tmp_path / "face.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    write_rgb(tmp_path / "tiny.jpg", cv2.resize(grace(), (20, 20)))
    write_rgb(tmp_path / "noise.png", noise(200, 200, 5))
    names = ["face.jpg", "cut.jpg", "tiny.jpg", "noise.png"]
    ds = load(manifest(tmp_path, names))
    problems = by_problem(ds.faces())
    assert problems.get("tiny.jpg") == "too_small" and problems.get("noise.png") == "no_face", problems
    assert problems.get("cut.jpg") == "unreadable", problems  # (OpenCV 4.x decodes half a JPEG, grey below)
    acq = ds.acquisition()
    attempted = 3
    assert acq.attempted.sum() == attempted and acq.failed.tolist()[2:] == [True, True]
    assert acq.summary()["fta_rate"] == pytest.approx(2 / attempted)


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


def test_cold_and_warm_cache_agree_exactly_on_a_downscaled_photo(tmp_path, cache):
    big = cv2.resize(grace(), (1200, 1406), interpolation=cv2.INTER_CUBIC)  # > 800 px: detected downscaled
    write_rgb(tmp_path / "big.jpg", big)
    root = manifest(tmp_path, ["big.jpg"])
    cold, warm = load(root).acquisition(), load(root).acquisition()
    assert cold.detected == 1 and warm.cache_hits == 1
    assert np.isfinite(cold.landmarks).all() and np.array_equal(cold.landmarks, warm.landmarks)


@pytest.mark.parametrize("faces", [
    [{"box": [0, 0, 9, 9], "confidence": 0.99, "points": [[1, 1]] * 4}],                    # four points
    [{"box": [0, 0, 9, 9], "confidence": 0.99, "points": [[1, 1]] * 6}],                    # six points
    [{"box": [0, 0, 9, 9], "confidence": 0.99, "points": [[1, float("nan")]] + [[1, 1]] * 4}],
    [{"box": [0, 0, 9, float("inf")], "confidence": 0.99, "points": [[1, 1]] * 5}],
    [{"box": [0, 0, 9, 9], "confidence": float("nan"), "points": [[1, 1]] * 5}],
    [{"box": [0, 0, 9, 9], "confidence": 0.99, "points": [[1, 1, 1]] * 5}],
    [{"box": [0, 0, 9, 9], "confidence": 0.99, "points": [["1", 1]] * 5}],
    [{"box": [0, 0, 9], "confidence": 0.99, "points": [[1, 1]] * 5}],
    [{"box": [0, 0, 9, 9], "confidence": 0.99, "points": 5}],
])
def test_malformed_cache_entry_is_a_miss_not_a_traceback(tmp_path, faces):
    from audit.intake.cache import LandmarkCache

    cache = LandmarkCache("det:key", root=tmp_path)
    image = "ab" * 32
    path = cache._path(image)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"detector": "det:key", "image": image, "faces": faces}))  # NaN/Infinity: valid for json
    assert cache.get(image) is None and cache.misses == 1
    path.write_text("[1, 2]")  # well-formed JSON, not an entry
    assert cache.get(image) is None and cache.misses == 2
    good = Detection((0.0, 0.0, 9.0, 9.0), 0.99, ((1.0, 1.0),) * 5)
    cache.put(image, [good])
    assert cache.get(image) == [good]


def test_no_landmark_cache_reads_and_writes_nothing(tmp_path, cache, monkeypatch):
    from audit.intake.cache import LandmarkCache

    monkeypatch.setenv("FACEAUDIT_NO_LANDMARK_CACHE", "1")
    c = LandmarkCache("det:key")
    c.put("ab" * 32, [Detection((0.0, 0.0, 9.0, 9.0), 0.99, ((1.0, 1.0),) * 5)])
    assert c.get("ab" * 32) is None and not cache.exists()
    monkeypatch.setenv("FACEAUDIT_NO_LANDMARK_CACHE", "0")
    assert LandmarkCache("det:key").enabled


def test_age_groups_are_one_definition_and_fractional_ages_keep_a_group():
    from audit.data.groups import AGE_GROUPS, age_bucket, group_labels
    from audit.intake.acquire import Acquisition, fta_metrics
    from audit.probes import identity, leakage

    assert identity.group_labels is group_labels and leakage.age_bucket is age_bucket
    ages = pd.Series([3.5, 12.5, 30.5, 45.5, 60.5, 0.0, 61.0, np.nan, 19.9])
    assert group_labels(ages, "age").tolist() == ["0-3", "4-12", "20-30", "31-45", "46-60", "0-3", "61+", None,
                                                  "13-19"]
    assert list(AGE_GROUPS[leakage.age_bucket(ages[:7])]) == group_labels(ages[:7], "age").tolist()
    m = pd.DataFrame({"subject": [f"s{i}" for i in range(8)], "age": ages[:8]})
    n = len(m)
    acq = Acquisition(key="k", detector={}, min_confidence=0.9, landmarks=np.zeros((n, 5, 2)),
                      attempted=np.ones(n, bool), failed=np.zeros(n, bool), confidence=np.ones(n))
    recs = [r for r in fta_metrics(acq, m, ["age"], 20, 0) if r.attribute == "age"]
    assert sum(r.n for r in recs) == 7  # every photo with an age is in a group (the NaN one in none)


def test_threshold_is_written_losslessly_in_keys_and_the_rerun_command():
    from audit.intake.acquire import acquisition_key
    from audit.report.render import rerun_command

    class Det:
        key = "det:x"

    assert acquisition_key(Det, 0.9999991) != acquisition_key(Det, 0.9999994)
    assert acquisition_key(Det, 0.9).endswith("min_confidence=0.9")
    config = {"model": "m.onnx", "data": "d", "min_face_confidence": 0.9999991, "probes": ["identity"],
              "conditions": ["clean"], "preset": "quick", "seed": 0}
    assert "--min-face-confidence 0.9999991" in rerun_command({"config": config})[0]


def test_failure_grid_shows_the_worst_first_spread_across_persons():
    from audit.data.images import QualityIssue
    from audit.intake.acquire import worst_failures

    subjects = ["a", "a", "a", "a", "b", "c", "c", "d"]
    conf = np.array([np.nan, 0.5, 0.2, 0.1, 0.8, np.nan, 0.3, 0.95])
    problems = ["no_face", "low_confidence", "low_confidence", "low_confidence", "low_confidence", "no_face",
                "low_confidence", None]
    issues = [QualityIssue(f"{i}.jpg", i + 1, p, "") for i, p in enumerate(problems) if p]
    rows = [i.row for i in worst_failures(issues, conf, subjects, max_n=24)]
    # no_face first (a, c), then low confidence rising; at most two of a's four failures.
    assert rows == [1, 6, 4, 7, 5]
    # Short of room, every person gets one before anyone gets a second.
    assert [i.row for i in worst_failures(issues, conf, subjects, max_n=4)] == [1, 6, 4, 5]
    assert [i.row for i in worst_failures(issues, conf, subjects, max_n=24, per_person=1)] == [1, 6, 5]


def test_a_detector_giving_non_finite_landmarks_is_a_one_line_error_and_caches_nothing(tmp_path, cache):
    """A review of the intake: a detector whose landmark regression overflowed (NaN or inf points at a finite score,
    as an fp16 export can give) crashed in a thread with 'not a finite number: inf', naming neither the photo nor the
    detector, and left a junk cache entry behind."""
    import hashlib

    from audit.errors import ModelError
    from audit.intake.acquire import acquire
    from audit.intake.cache import LandmarkCache

    photo = tmp_path / "a.png"
    write_rgb(photo, noise(64, 64, 1))

    class Overflowing:
        name, sha256, key = "overflowing", "0" * 64, "overflowing-key"

        def detect(self, rgb):
            return [Detection((10.0, 10.0, 40.0, 40.0), 0.99, tuple((float("inf"), 1.0) for _ in range(5)))]

    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    with pytest.raises(ModelError, match=r"^a.png \(row 1\): the face detector 'overflowing' gave an invalid face "
                                         r"\(a non-finite box or landmark"):
        acquire([photo], ["a.png"], [digest], Overflowing(), 0.9)
    assert LandmarkCache(Overflowing.key).get(digest) is None
