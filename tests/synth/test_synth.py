import hashlib

import numpy as np
import pytest

from audit.data import load
from audit.synth import Recipe, checksum, draw, generate_arrays, make_nuisance, make_person, materialise


def test_same_seed_same_bytes(tmp_path):
    a, da = generate_arrays(Recipe(people=6, images=3, seed=5), workers=1)
    b, db = generate_arrays(Recipe(people=6, images=3, seed=5), workers=1)
    c, _ = generate_arrays(Recipe(people=6, images=3, seed=6), workers=1)
    assert hashlib.sha256(a.tobytes()).digest() == hashlib.sha256(b.tobytes()).digest()
    assert da.equals(db)
    assert not np.array_equal(a, c)


def test_materialise_is_checked_and_reused(tmp_path):
    out, digest, reused = materialise(tmp_path / "s", Recipe(people=4, images=2), workers=1)
    assert not reused and checksum(out) == digest
    _, digest2, reused2 = materialise(tmp_path / "s", Recipe(people=4, images=2), workers=1)
    assert reused2 and digest2 == digest
    (out / "images" / "eval00000" / "00.jpg").write_bytes(b"tampered")
    _, digest3, reused3 = materialise(tmp_path / "s", Recipe(people=4, images=2), workers=1)
    assert not reused3 and digest3 == digest  # regenerated to the same bytes


def test_splits_share_nobody():
    train = {make_person(0, "train", i).face_w for i in range(50)}
    evals = {make_person(0, "eval", i).face_w for i in range(50)}
    assert not train & evals


def test_attribute_balance():
    people = [make_person(0, "eval", i) for i in range(600)]
    sex = np.mean([p.sex == "female" for p in people])
    tones = {t: np.mean([p.skin_tone == t for p in people]) for t in ("light", "medium", "dark")}
    ages = np.array([p.age for p in people])
    control = np.mean([p.control == "a" for p in people])
    assert 0.45 < sex < 0.55 and 0.45 < control < 0.55
    assert all(abs(v - 1 / 3) < 0.01 for v in tones.values())
    assert ages.min() >= 18 and ages.max() <= 80 and 40 < ages.mean() < 58


@pytest.mark.parametrize("index", range(6))
def test_landmarks_land_on_their_features(index):
    p = make_person(3, "eval", index)
    img, pts = draw(p, make_nuisance(3, p.pid, 0))
    gray = img.astype(float).mean(2)

    def patch(xy, r=1):
        x, y = int(round(xy[0])), int(round(xy[1]))
        return gray[y - r:y + r + 1, x - r:x + r + 1].mean()

    left_eye, right_eye, nose, mouth_l, mouth_r = pts[:5]
    cheek = (left_eye + mouth_l) / 2 + np.array([-3, 0])
    # Pupils are darker than the cheek below them.
    assert patch(left_eye) < patch(cheek) - 20 and patch(right_eye) < patch(cheek) - 20
    # Mouth corners lie on the lips: redder than the skin at the same height beside the face centre.
    red = img[..., 0].astype(float) - img[..., 1:].mean(2)
    assert red[int(mouth_l[1]), int(mouth_l[0]) + 2] > red[int(cheek[1]), int(cheek[0])]
    # The chin point (jaw3) is on the face outline: skin above, background or neck below is different.
    assert pts[8][1] > mouth_l[1] + 5


def test_control_is_not_drawn():
    base = make_person(1, "eval", 2)
    from dataclasses import replace

    flipped = replace(base, control="b" if base.control == "a" else "a")
    nz = make_nuisance(1, base.pid, 0)
    np.testing.assert_array_equal(draw(base, nz)[0], draw(flipped, nz)[0])


def test_sample_models_load_and_match_profiles(sample_model, small_data):
    from audit.models import load as load_model

    faces = load(small_data).faces().images[:4]
    for name in ("fr-baseline", "fr-maskaware", "fr-private", "fr-robust", "attr-classifier"):
        m = load_model(sample_model(name))
        assert m.profile_from_file and not m.profile.guessed
        if m.profile.kind == "embedding":
            assert m.ort.embed(faces).shape == (4, 128)
        else:
            preds = m.ort.predict(faces)
            assert set(preds) == {"sex", "skin_tone", "age"} and preds["skin_tone"].shape == (4, 3)


def test_sample_models_total_size(sample_model):
    from audit import api

    total = sum(p.stat().st_size for p in api.sample_models())
    assert len(api.sample_models()) == 5
    assert total < 30e6
