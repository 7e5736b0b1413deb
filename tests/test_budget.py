"""Preset budgets count images, not persons: whole persons in a seeded order while their images fit."""

import numpy as np
import pandas as pd

from audit.run.inputs import _subset
from audit.config import AuditConfig
from audit.data.loaders import Dataset, Faces


def _faces(per_person: list[int]) -> tuple[Faces, Dataset]:
    subjects = [f"p{i}" for i, k in enumerate(per_person) for _ in range(k)]
    n = len(subjects)
    faces = Faces(np.zeros((n, 5, 2), np.float32), np.arange(n), [], (), pixels=np.zeros((n, 2, 2, 3), np.uint8))
    return faces, Dataset(root=None, manifest=pd.DataFrame({"subject": subjects}), source="t", name="t")


def persons(faces, ds):
    return set(ds.manifest["subject"].to_numpy()[faces.rows])


def test_one_image_per_person_keeps_the_whole_image_budget():
    faces, ds = _faces([1] * 5000)
    used = _subset(faces, ds, 2400, None, seed=0)
    assert len(used.rows) == 2400 and len(persons(used, ds)) == 2400  # not cut to a few hundred people


def test_whole_persons_only_seeded_and_capped():
    faces, ds = _faces([8] * 300 + [3] * 200)
    a, b = _subset(faces, ds, 1000, None, seed=1), _subset(faces, ds, 1000, None, seed=1)
    assert np.array_equal(a.rows, b.rows) and len(a.rows) <= 1000
    counts = pd.Series(ds.manifest["subject"].to_numpy()[a.rows]).value_counts()
    full = ds.manifest["subject"].value_counts()
    assert all(counts[p] == full[p] for p in counts.index)  # never part of a person
    assert not np.array_equal(a.rows, _subset(faces, ds, 1000, None, seed=2).rows)
    assert len(persons(_subset(faces, ds, 10**6, 50, seed=0), ds)) == 50  # the optional person cap
    assert _subset(faces, ds, 10**6, None, seed=0) is faces  # within budget: everything


def test_presets_resolve_an_image_budget_and_no_person_cap():
    cfg = AuditConfig(model="m.onnx")
    assert cfg.setting("max_images") == 2400 and cfg.setting("max_subjects") is None
    assert AuditConfig(model="m.onnx", preset="standard", max_images=500).setting("max_images") == 500
    assert cfg.to_record()["resolved"]["max_images"] == 2400
