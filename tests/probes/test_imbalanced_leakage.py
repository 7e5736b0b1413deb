"""Leakage of an attribute whose classes are unequal: the attack is scored by balanced accuracy, so its attackers
must be fitted class-balanced too. A review of the probe: fitted for plain accuracy they gave up a 10% minority class
and the stored gain was 0.05-0.11 where one class-weighted logistic regression reached 0.18-0.28 (a verdict band)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audit.config import AuditConfig
from audit.probes.leakage import LeakageProbe, categorical_stats


def _world(seed: int, persons: int = 200, images: int = 4, dim: int = 32, minority: float = 0.1,
           signal: float = 1.5):
    """Embeddings of persons whose attribute (10% 'b') shifts one direction by ``signal`` person-level deviations."""
    rng = np.random.default_rng(seed)
    label = (rng.random(persons) < minority).astype(int)
    subjects = np.repeat(np.arange(persons), images)
    x = rng.normal(0, 1, (persons, dim))[subjects] + rng.normal(0, 0.5, (persons * images, dim))
    x[:, 0] += signal * label[subjects]
    manifest = pd.DataFrame({"subject": [f"p{s}" for s in subjects], "attr": np.where(label[subjects], "b", "a")})
    return x.astype(np.float32), manifest, label[subjects]


def _probe(x: np.ndarray, manifest: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The leakage probe at the quick preset on these embeddings (its context carries them as the clean condition)."""
    cfg = AuditConfig(model="m.onnx", data="d", probes=["leakage"], conditions=["clean"], attributes=["attr"],
                      preset="quick", parity=False, seed=seed)
    ctx = SimpleNamespace(config=cfg, seed=seed, embeddings=lambda cond: x, subjects=manifest["subject"].to_numpy(),
                          column=lambda name: manifest[name].to_numpy(), progress=lambda *a: None,
                          faces=SimpleNamespace(rows=np.arange(len(x))),
                          dataset=SimpleNamespace(manifest=manifest, attributes=["attr"], source="imbalanced",
                                                  n_subjects=manifest["subject"].nunique()),
                          model=SimpleNamespace(profile=SimpleNamespace(kind="embedding")))
    return pd.DataFrame([vars(r) for r in LeakageProbe().run(ctx).metrics])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_minority_class_is_attacked_as_a_class_weighted_regression_attacks_it(seed):
    x, manifest, y = _world(seed)
    m = _probe(x, manifest, seed)
    gain = m[(m["metric"] == "normalised_gain") & (m["setting"] == "train=same")].iloc[0]
    reference = np.mean([categorical_stats(y, cross_val_predict(
        make_pipeline(StandardScaler(), LogisticRegression(C=0.3, class_weight="balanced", max_iter=2000)), x, y,
        groups=manifest["subject"], cv=StratifiedGroupKFold(5, shuffle=True, random_state=r)), 2)["normalised_gain"]
        for r in range(2)])
    # Measured: 0.243 / 0.249 / 0.167 against the reference's 0.225 / 0.278 / 0.179 (0.087 / 0.105 / 0.050 before).
    assert gain["value"] >= reference - 0.05 and gain["value"] >= 0.15, (gain["value"], reference)


def test_an_occluded_conditions_attackers_choose_their_regularisation_on_its_own_outputs():
    """A review of the probe: the attackers' hyperparameters were chosen once, on the clean outputs, and reused for
    every occluded condition's attacker trained on it (train=same). An occlusion leaves a weaker, noisier signal that
    wants more regularisation: on fr-private (sex, N95 mask, 300 persons x 8 images) clean chose C 3, the masked
    outputs C 0.03, and the stored gain was 0.386 [0.267, 0.500] where 0.431 [0.349, 0.508] was reachable (a fail
    read as a warn on a smaller set). Here clean's signal lies in the difference of near-copies of each feature,
    which weak regularisation reads (C 3), and the occluded condition's is spread thinly over many noisy features,
    which strong regularisation reads (C 0.03): the occluded attackers trained on it use the C chosen on it, the
    MLP's width chosen on clean, and those trained on clean faces keep clean's."""
    import json

    from audit.probes.attackers import tune
    from audit.seeding import derive_seed

    rng = np.random.default_rng(0)
    persons, images = 200, 4
    label = rng.integers(0, 2, persons)
    subjects = np.repeat(np.arange(persons), images)
    y = label[subjects]
    z = rng.normal(0, 1, (persons, 16))[subjects] + rng.normal(0, 0.3, (len(y), 16))
    clean = np.concatenate([z + rng.normal(0, 0.05, z.shape), z + rng.normal(0, 0.05, z.shape)], 1)
    clean[:, :16] += 0.05 * (2 * y[:, None] - 1)
    masked = rng.normal(0, 1, (persons, 32))[subjects] + rng.normal(0, 1.5, (len(y), 32))
    masked += 0.12 * (2 * y[:, None] - 1)
    embs = {"clean": clean.astype(np.float32), "mask:n95": masked.astype(np.float32)}
    manifest = pd.DataFrame({"subject": [f"p{s}" for s in subjects], "attr": np.where(y, "b", "a")})
    cfg = AuditConfig(model="m.onnx", data="d", probes=["leakage"], conditions=list(embs), attributes=["attr"],
                      preset="quick", parity=False, seed=0)
    ctx = SimpleNamespace(config=cfg, seed=0, embeddings=lambda cond: embs[cond],
                          subjects=manifest["subject"].to_numpy(), column=lambda name: manifest[name].to_numpy(),
                          progress=lambda *a: None, faces=SimpleNamespace(rows=np.arange(len(y))),
                          dataset=SimpleNamespace(manifest=manifest, attributes=["attr"], source="w",
                                                  n_subjects=persons),
                          model=SimpleNamespace(profile=SimpleNamespace(kind="embedding")))
    res = LeakageProbe().run(ctx)
    doc = json.loads(next(a for a in res.artifacts if a.name == "attackers.json").data)
    clean_choice = {f: t["param"] for f, t in doc["tuning"]["attr"].items()}
    own = {f: t["param"] for f, t in doc["tuning"]["attr|mask:n95"].items()}
    assert clean_choice["logreg"] == 3.0 and own["logreg"] == 0.03 and set(own) == {"logreg", "knn"}
    assert doc["results"]["mask:n95|train=same|attr"]["hyperparameters"] == {**clean_choice, **own}
    assert doc["results"]["mask:n95|train=clean|attr"]["hyperparameters"] == clean_choice
    assert doc["results"]["clean|train=same|attr"]["hyperparameters"] == clean_choice
    # chosen on the occluded outputs themselves, as the clean ones are chosen on theirs
    strata = manifest["attr"].map({"a": 0, "b": 1}).to_numpy()
    again = tune(embs["mask:n95"], strata, manifest["subject"].to_numpy(), "classification", cfg.setting("mlp_epochs"),
                 derive_seed(0, "tune", "attr", "mask:n95"), min_train=None, strata=strata, families=("logreg", "knn"))
    assert again["logreg"]["scores"] == doc["tuning"]["attr|mask:n95"]["logreg"]["scores"]
