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
