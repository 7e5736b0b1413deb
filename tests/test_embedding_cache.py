"""The store's embedding cache: embeddings made under one model profile are never reused under another."""

from __future__ import annotations

import numpy as np
import yaml

from audit import api
from audit.config import AuditConfig
from audit.models import load as load_model
from audit.store import Store


def _profile(path, color):
    path.write_text(yaml.safe_dump({
        "name": "tiny", "kind": "embedding", "embedding_output": "embedding",
        "input": {"name": "input", "size": [112, 112], "layout": "NCHW", "color": color,
                  "mean": [0, 0, 0], "std": [255, 255, 255]}}))
    return path


def test_another_profile_of_the_same_model_does_not_reuse_the_cached_embeddings(tmp_path, small_data, tiny_model):
    """The same model file run with an RGB and then a BGR profile into one store: the second run embeds the faces
    itself (before, the cache key was model, dataset, condition and seed, and the BGR run read the RGB embeddings)."""
    db = tmp_path / "s.duckdb"
    profiles = {c: _profile(tmp_path / f"{c}.yaml", c) for c in ("RGB", "BGR")}
    runs = {c: api.run_audit(AuditConfig(model=tiny_model, profile=p, data=str(small_data), probes=["identity"],
                                         conditions=["clean"], parity=False, accept_profile=True, bootstrap=20), db)
            for c, p in profiles.items()}
    models = {c: load_model(tiny_model, p) for c, p in profiles.items()}
    assert models["RGB"].info.sha256 == models["BGR"].info.sha256
    with Store(db, read_only=True) as s:
        sets = s.df("SELECT DISTINCT condition FROM embeddings WHERE model_id = ?", [models["RGB"].info.sha256])
        assert len(sets) == 2  # one cached set per profile
        from audit.run.embeddings import cache_key

        vectors = {}
        for c, run_id in runs.items():
            # The key carries the profile's hash the run records as its identity.
            assert s.run(run_id)["config"]["inputs"]["profile"] == models[c].profile.content_hash()
            rows, vectors[c] = s.cached_embeddings(*cache_key(models[c], s.run(run_id)["dataset_id"], "clean", 0))
        assert not np.allclose(vectors["RGB"], vectors["BGR"])  # channel order changes every embedding


def test_embeddings_another_faceaudit_release_cached_are_not_reused(tmp_path, small_data, tiny_model, monkeypatch):
    """A review of the probes: the key held no faceaudit version, so a newer release reading a store an older one
    filled took its embeddings (made by the older release's image reading, alignment and conditions) and stored its
    numbers as its own. Here the older release's vectors are planted wrong: the current release embeds again and
    measures what a fresh store gives."""
    import audit

    cfg = AuditConfig(model=tiny_model, data=str(small_data), probes=["identity"], conditions=["clean"], parity=False,
                      accept_profile=True, bootstrap=20)
    db = tmp_path / "s.duckdb"
    current = audit.__version__
    monkeypatch.setattr(audit, "__version__", "0.1.0")
    api.run_audit(cfg, db)
    monkeypatch.setattr(audit, "__version__", current)
    with Store(db) as s:
        s.con.execute("UPDATE embeddings SET vector = list_transform(vector, lambda x: random())")
    run_id = api.run_audit(cfg, db)
    fresh = api.run_audit(cfg, tmp_path / "fresh.duckdb")
    with Store(db, read_only=True) as s:
        assert len(s.df("SELECT DISTINCT condition FROM embeddings")) == 2  # one cached set per release
        again = s.metrics(run_id)
    with Store(tmp_path / "fresh.duckdb", read_only=True) as s:
        expected = s.metrics(fresh)
    keys = ["metric", "condition", "setting", "attribute"]
    np.testing.assert_allclose(again.sort_values(keys)["value"].to_numpy(float),
                               expected.sort_values(keys)["value"].to_numpy(float))
