"""Known-answer tests: the generator plants sex, skin tone and age, and never draws 'control'."""

import numpy as np
import pytest

from audit.probes.leakage import age_bucket, age_stats, categorical_stats
from tests.probes.conftest import pick

pytestmark = pytest.mark.slow


def test_planted_attributes_found_above_chance(audit_runs):
    m = audit_runs("fr-baseline")
    for attr in ("sex", "skin_tone"):
        row = pick(m, probe="leakage", condition="clean", metric="normalised_gain", attribute=attr, setting="train=same")
        assert row["ci_low"] > 0.2, attr
    age = pick(m, probe="leakage", condition="clean", metric="mae_gain", attribute="age", setting="train=same")
    assert age["ci_low"] > 0.2
    mae = pick(m, probe="leakage", condition="clean", metric="mae", attribute="age", setting="train=same")
    base = pick(m, probe="leakage", condition="clean", metric="baseline_mae", attribute="age", setting="train=same")
    assert mae["value"] < base["value"]


def test_never_rendered_control_is_at_chance(audit_runs):
    m = audit_runs("fr-baseline")
    rows = m[(m["probe"] == "leakage") & (m["attribute"] == "control") & (m["metric"] == "normalised_gain")]
    assert len(rows) == 3  # clean; mask with both attacker settings
    assert (rows["ci_low"] <= 0).all() and (rows["ci_high"] >= 0).all()
    chance = m[(m["attribute"] == "control") & (m["metric"] == "chance")]
    assert np.allclose(chance["value"], 0.5)


def test_masks_do_not_hide_skin_tone(audit_runs):
    m = audit_runs("fr-baseline")
    row = pick(m, probe="leakage", condition="mask:surgical", metric="normalised_gain", attribute="skin_tone",
               setting="train=same")
    assert row["ci_low"] > 0.5
    effect = pick(m, probe="leakage", condition="mask:surgical", metric="mask_effect", attribute="skin_tone",
                  setting="train=clean")
    assert effect["ci_low"] <= effect["value"] <= effect["ci_high"]


def test_private_model_leaks_less_sex_than_baseline(probe_data, sample_model):
    """Paired on the same people, folds and bootstrap resamples: the difference's interval is below zero."""
    from audit.config import AuditConfig
    from audit.data import load
    from audit.data.split import subject_folds
    from audit.metrics.stats import SubjectBootstrap
    from audit.models import load as load_model
    from audit.probes.leakage import LeakageProbe

    ds = load(probe_data)
    faces = ds.faces()
    subjects = ds.manifest["subject"].to_numpy()[faces.rows]
    labels, y = np.unique(ds.manifest["sex"].to_numpy()[faces.rows], return_inverse=True)
    keep = np.ones(len(y), bool)
    folds = subject_folds(subjects, 3, 0)
    cfg = AuditConfig(model="unused.onnx")
    probe = LeakageProbe()
    gains = {}
    for name in ("fr-baseline", "fr-private"):
        emb = load_model(sample_model(name)).ort.embed(faces.images)
        params = {"logreg": 0.3, "knn": 15, "mlp": 64}
        fits = probe._fit_folds(emb, y, keep, [folds], "classification", params, cfg, 0, f"sex:{name}")[0]
        oof = probe._predict(fits, emb, folds, len(y))
        probe._best(oof, y, keep, folds, False, labels)
        gains[name] = probe._stat_fn(y, oof["_selected"], keep, False, labels, None, "normalised_gain")
    diff = SubjectBootstrap(subjects, 300, 0, "paired").paired(gains["fr-private"], gains["fr-baseline"])
    assert diff.ci_high < 0, diff
    assert diff.value < -0.08, diff


def test_attribute_model_heads_evaluated_directly(audit_runs):
    m = audit_runs("attr-classifier", probes=("leakage",))
    sex = pick(m, probe="leakage", condition="clean", metric="balanced_accuracy", attribute="sex", setting="direct")
    tone = pick(m, probe="leakage", condition="clean", metric="accuracy", attribute="skin_tone", setting="direct")
    age = pick(m, probe="leakage", condition="clean", metric="mae", attribute="age", setting="direct")
    assert sex["value"] > 0.8 and tone["value"] > 0.9 and age["value"] < 12
    assert m[(m["setting"] == "direct") & (m["attribute"] == "control")].empty  # no head for it


def test_categorical_stats_by_hand():
    y = np.array([0, 0, 0, 0, 1, 1])
    p = np.array([0, 0, 0, 1, 1, 0])
    s = categorical_stats(y, p, 2)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert s["normalised_gain"] == pytest.approx((s["balanced_accuracy"] - 0.5) / 0.5)
    assert s["chance"] == 0.5


def test_age_stats_and_buckets():
    assert age_bucket(np.array([0, 3, 4, 12, 13, 19, 20, 30, 31, 45, 46, 60, 61, 90])).tolist() == \
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    s = age_stats(np.array([20.0, 40.0]), np.array([22.0, 36.0]), 30.0)
    assert s["mae"] == 3 and s["baseline_mae"] == 10 and s["mae_gain"] == pytest.approx(0.7)
    assert s["bucket_accuracy"] == 1.0


def test_reported_attacker_at_least_as_strong_as_plain_grouped_logistic_regression(audit_runs, probe_data,
                                                                                   sample_model):
    """The audit must never report less leakage than the simplest textbook attack on the same embeddings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from audit import conditions as cond_mod
    from audit.data import load
    from audit.models import load as load_model

    m = audit_runs("fr-baseline")
    ds = load(probe_data)
    faces = ds.faces()
    subjects = ds.manifest["subject"].to_numpy()[faces.rows]
    model = load_model(sample_model("fr-baseline"))
    for cond in ("clean", "mask:surgical"):
        images = faces.images if cond == "clean" else cond_mod.apply(cond, faces.images, faces.landmarks,
                                                                     faces.point_names, faces.rows, 0)
        emb = model.ort.embed(images)
        for attr in ("sex", "skin_tone"):
            labels, y = np.unique(ds.manifest[attr].to_numpy()[faces.rows].astype(str), return_inverse=True)
            pred = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), emb, y,
                                     groups=subjects, cv=GroupKFold(5))
            baseline = categorical_stats(y, pred, len(labels))["normalised_gain"]
            row = pick(m, probe="leakage", condition=cond, metric="normalised_gain", attribute=attr,
                       setting="train=same")
            assert row["ci_high"] >= baseline and row["value"] >= baseline - 0.03, (cond, attr, row["value"], baseline)


def test_mlps_trained_in_a_group_are_the_models_trained_alone():
    """A group is only a faster way to train: each member learns from its own rows and seed, as if alone."""
    from sklearn.metrics import balanced_accuracy_score

    from audit.probes.attackers import MLPGroup

    rng = np.random.default_rng(4)
    xs = [rng.normal(0, 1, (300, 16)) for _ in range(3)]
    ys = [(x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + 2 * (x[:, 2] > 1) for x in xs]  # four classes
    test = rng.normal(0, 1, (200, 16))
    group = MLPGroup("classification", 30, hidden=32).fit(xs, ys, [11, 12, 13])
    for x, y, seed, member in zip(xs, ys, [11, 12, 13], group):
        alone = MLPGroup("classification", 30, hidden=32).fit([x], [y], [seed])[0]
        assert np.array_equal(member.predict(test), alone.predict(test))
        assert balanced_accuracy_score(y, member.predict(x)) > 0.8  # it did learn the rule (class-balanced)
    other_seed = MLPGroup("classification", 30, hidden=32).fit([xs[0]], [ys[0]], [99])[0]
    assert not np.array_equal(other_seed.weights[0].numpy(), group[0].weights[0].numpy())
    ages = [x[:, 0] * 10 + 40 for x in xs]
    reg = MLPGroup("regression", 20, hidden=32).fit(xs, ages, [1, 2, 3])
    assert all(np.mean(np.abs(m.predict(x) - a)) < 0.5 * np.mean(np.abs(a - a.mean())) for m, x, a in zip(reg, xs, ages))
