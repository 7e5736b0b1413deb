import numpy as np
import pytest

from audit import conditions
from audit.data import load
from audit.errors import ConfigError


@pytest.fixture(scope="module")
def faces(small_data):
    return load(small_data).faces()


def apply(name, f, n=8, seed=0):
    return conditions.apply(name, f.images[:n], f.landmarks[:n], f.point_names, f.rows[:n], seed)


@pytest.mark.parametrize("name", ["mask:surgical", "mask:cloth", "mask:n95", "sunglasses", "patch:0.3", "freqmix:3",
                                  "mask:surgical+patch:0.2"])
def test_conditions_are_deterministic_and_change_pixels(faces, name):
    a, b = apply(name, faces), apply(name, faces)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, faces.images[:8])
    assert not np.array_equal(a, apply(name, faces, seed=1)) or name.startswith("sunglasses")


def test_masks_cover_lower_face_not_eyes(faces):
    masked = apply("mask:surgical", faces)
    diff = np.abs(masked.astype(int) - faces.images[:8].astype(int)).sum(3)
    lm = faces.landmarks[:8]
    for i in range(8):
        mouth = lm[i, 3:5].mean(0).astype(int)
        eye = lm[i, 0].astype(int)
        assert diff[i, mouth[1] - 2:mouth[1] + 3, mouth[0] - 2:mouth[0] + 3].mean() > 30
        assert diff[i, eye[1] - 2:eye[1] + 3, eye[0] - 2:eye[0] + 3].mean() < 5


def test_mask_without_extra_points_uses_face_model(faces):
    five = faces.point_names[:5]
    a = conditions.apply("mask:surgical", faces.images[:4], faces.landmarks[:4, :5], five, faces.rows[:4], 0)
    diff = np.abs(a.astype(int) - faces.images[:4].astype(int)).sum(3)
    assert (diff[:, 95:105, 45:67] > 30).mean() > 0.8  # chin area covered


def test_patch_ratio(faces):
    out = apply("patch:0.5", faces, n=1)
    grey = (out[0] == 127).all(2)
    assert 0.4 < grey.mean() < 0.6


def test_freqmix_more_images_moves_further(faces):
    d = [np.abs(apply(f"freqmix:{k}", faces).astype(float) - faces.images[:8]).mean() for k in (2, 6)]
    assert d[1] > d[0]


@pytest.mark.parametrize("bad,match", [("mask:bandana", "unknown condition"), ("patch:1.5", "between 0 and 1"),
                                       ("freqmix:9", "between 2 and 6"), ("blur", "unknown condition")])
def test_bad_condition_names(bad, match):
    with pytest.raises(ConfigError, match=match):
        conditions.parse(bad)


def test_template_mask_has_the_same_outline_for_everyone(faces):
    """mask:<type>@template is drawn from the mean landmarks: its coverage does not follow each person's face."""
    own, tmpl = apply("mask:surgical", faces), apply("mask:surgical@template", faces)
    covered_own = [(np.abs(o.astype(int) - f.astype(int)).sum(2) > 30) for o, f in zip(own, faces.images[:8])]
    covered_tmpl = [(np.abs(t.astype(int) - f.astype(int)).sum(2) > 30) for t, f in zip(tmpl, faces.images[:8])]
    spread = lambda masks: np.mean([np.mean(m ^ masks[0]) for m in masks[1:]])  # noqa: E731
    assert spread(covered_tmpl) < 0.5 * spread(covered_own)
    np.testing.assert_array_equal(tmpl, apply("mask:surgical@template", faces))  # still deterministic
    with pytest.raises(ConfigError):
        conditions.parse("mask:bandana@template")


def test_report_explains_a_mask_that_raises_leakage():
    import pandas as pd

    from audit.report.narrative import leakage_verdicts

    def row(cond, metric, setting, v, lo, hi):
        return {"probe": "leakage", "condition": cond, "metric": metric, "attribute": "sex", "group": "all",
                "setting": setting, "value": v, "ci_low": lo, "ci_high": hi, "n": 100, "direction": "neutral"}

    rows = [row("clean", "normalised_gain", "train=same", 0.64, 0.6, 0.7),
            row("mask:surgical", "normalised_gain", "train=same", 0.82, 0.78, 0.86),
            row("mask:surgical", "mask_effect", "train=same", 0.18, 0.12, 0.24)]
    text = leakage_verdicts(pd.DataFrame(rows))[0]
    assert "MORE readable than on clean faces" in text and "mask:surgical@template" in text
    rows += [row("mask:surgical@template", "mask_effect", "train=same", 0.01, -0.04, 0.06)]
    text = leakage_verdicts(pd.DataFrame(rows))[0]
    assert "the mask's shape carries it" in text
