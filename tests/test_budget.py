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


def test_heavy_persons_keep_at_most_the_per_person_cap():
    """A person owning a third of the images keeps the preset's cap of them (a seeded draw, in file order); everyone
    else keeps all of theirs."""
    from audit.data.budget import cap_per_person, capped

    faces, ds = _faces([150] + [3] * 100)  # p0 owns 150 of 450 images
    assert AuditConfig(model="m.onnx").setting("max_images_per_subject") == 10
    a, b = cap_per_person(faces, ds, 10, seed=0), cap_per_person(faces, ds, 10, seed=0)
    assert np.array_equal(a.rows, b.rows) and np.all(np.diff(a.rows) > 0)
    counts = pd.Series(ds.manifest["subject"].to_numpy()[a.rows]).value_counts()
    assert counts["p0"] == 10 and (counts.drop("p0") == 3).all() and len(counts) == 101
    assert not np.array_equal(a.rows, cap_per_person(faces, ds, 10, seed=1).rows)
    assert capped(ds.manifest["subject"].to_numpy(), 10) == (1, 140)
    assert cap_per_person(faces, ds, None, seed=0) is faces


def test_a_run_caps_a_heavy_person_and_the_report_says_so(small_data, tiny_model, tmp_path):
    """40 people x 4 images, relabelled so that one person owns 56 of the 160: a run with a cap of 6 images per person
    uses 6 of theirs, stores what the cap left out, and the report says it in words."""
    import json
    import shutil

    from audit import api
    from audit.store import Store

    data = tmp_path / "heavy"
    shutil.copytree(small_data, data)
    man = pd.read_csv(data / "manifest.csv")
    people = sorted(man["subject"].unique())
    man.loc[man["subject"].isin(people[1:14]), "subject"] = people[0]
    man.to_csv(data / "manifest.csv", index=False)
    assert (man["subject"] == people[0]).sum() == 56
    db = tmp_path / "s.duckdb"
    cfg = AuditConfig(model=tiny_model, data=str(data), probes=["identity"], conditions=["clean"], bootstrap=20,
                      parity=False, max_images_per_subject=6)
    run_id = api.run_audit(cfg, db)
    with Store(db, read_only=True) as s:
        used = json.loads(bytes(s.artifacts(run_id, "dataset").set_index("name").loc["used.json", "data"]))
        fnmr = s.metrics(run_id).query("metric == 'fnmr'").iloc[0]
    assert (used["capped_persons"], used["capped_images"], used["images"]) == (1, 50, 110)
    assert fnmr["n"] == 110 - 27  # every kept image but each person's gallery image is a probe
    html = api.build_report(run_id, db, tmp_path / "out", ["html"])[0].read_text()
    assert "1 person has more than 6 images and keeps 6" in html and "50 images left out" in html
