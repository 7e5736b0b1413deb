"""Streaming: the budget is taken on the manifest before any image is decoded; faces are decoded, transformed and
embedded in chunks; what a condition made of a face is the same whichever way it is asked for."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from audit import api
from audit.run import inputs as inputs_mod
from audit import conditions as cond_mod
from audit.config import AuditConfig
from audit.data import load
from audit.store import Store


@pytest.fixture
def data_copy(small_data, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(small_data, folder)
    return folder


def _config(model, data, **kw):
    return AuditConfig(model=model, data=str(data), **{"probes": ["identity"], "conditions": ["clean", "mask:surgical"],
                                                        "parity": False, "bootstrap": 20, **kw})


def test_the_budget_is_taken_before_any_image_is_decoded(data_copy, tiny_model, tmp_path):
    """A file that does not decode is found when the run uses it, and never read when the budget leaves its person
    out: the subset comes from the manifest, and only the chosen faces are decoded."""
    ds = load(data_copy)
    chosen = inputs_mod._subset(ds.faces(verify=False), ds, 40, None, seed=0)
    subjects = ds.manifest["subject"].to_numpy()
    used = set(subjects[chosen.rows])
    inside = next(r for r in chosen.rows)
    outside = next(r for r in range(len(ds.manifest)) if subjects[r] not in used)
    for row in (inside, outside):  # headers Pillow cannot read, bodies OpenCV cannot decode
        (data_copy / ds.manifest["image"][row]).write_bytes(b"\xff\xd8 not really a jpeg")
    db = tmp_path / "s.duckdb"
    run_id = api.run_audit(_config(tiny_model, data_copy, max_images=40), db)
    with Store(db, read_only=True) as s:
        quality = s.data_quality(s.run(run_id)["dataset_id"])
        used_json = s.artifacts(run_id, "dataset").set_index("name").loc["used.json", "data"]
    import json

    assert quality["row_number"].tolist() == [inside + 1] and quality["problem"].tolist() == ["unreadable"]
    assert json.loads(bytes(used_json))["images"] == len(chosen) - 1


def test_chunked_embeddings_equal_one_whole_batch(small_data, tiny_model, tmp_path, monkeypatch):
    """Chunks of 7 faces give the embeddings one batch of every face gives (conditions are per face)."""
    import audit.run.embeddings as embeddings_mod
    from audit.models import load as load_model
    from audit.run.embeddings import cache_key

    monkeypatch.setattr(embeddings_mod, "CHUNK", 7)
    db = tmp_path / "s.duckdb"
    run_id = api.run_audit(_config(tiny_model, small_data), db)
    faces = load(small_data).faces()
    model = load_model(tiny_model)
    with Store(db, read_only=True) as s:
        run = s.run(run_id)
        for cond in ("clean", "mask:surgical"):
            rows, stored = s.cached_embeddings(*cache_key(model, run["dataset_id"], cond, 0))
            images = faces.images if cond == "clean" else cond_mod.apply(cond, faces.images, faces.landmarks,
                                                                         faces.point_names, faces.rows, 0)
            whole = model.ort.embed(images)
            order = np.argsort(rows)
            assert np.array_equal(rows[order], faces.rows)
            np.testing.assert_allclose(stored[order], whole, rtol=1e-5, atol=1e-6)


def test_a_mixing_condition_shows_what_was_embedded(small_data, tiny_model, tmp_path, monkeypatch):
    """freqmix mixes each face with others from its chunk: images asked for later, for any positions, are the
    ones that were embedded."""
    import audit.run.embeddings as embeddings_mod
    from audit.models import load as load_model

    monkeypatch.setattr(embeddings_mod, "CHUNK", 16)
    model = load_model(tiny_model)
    ds = load(small_data)
    config = _config(tiny_model, small_data, conditions=["clean", "freqmix:3"])
    with Store(tmp_path / "s.duckdb") as store:
        embed = embeddings_mod.Embeddings(store, model, ds, ds.faces(), config)
        embed.prepare(["freqmix:3"])
        idx = np.array([3, 17, 40, 151])  # four chunks
        again = model.ort.embed(embed.condition_images("freqmix:3", idx))
        np.testing.assert_allclose(again, embed.embeddings("freqmix:3")[idx], rtol=1e-5, atol=1e-6)
        # ... and a mixed face is not the clean face
        assert not np.array_equal(embed.condition_images("freqmix:3", idx), ds.faces().load(idx))


def test_prefetching_the_next_chunk_gives_the_same_chunks_and_stops_when_the_caller_does(small_data):
    """Decoding ahead (the GPU path) changes when a chunk is decoded, not what it holds; a caller that stops
    (a cancelled run) leaves no more than the one chunk in flight decoded."""
    faces = load(small_data).faces()
    plain = list(faces.chunks(48))
    ahead = list(faces.chunks(48, prefetch=True))
    assert len(plain) == len(ahead) == -(-len(faces) // 48) > 2
    for (i, a), (j, b) in zip(plain, ahead):
        assert np.array_equal(i, j) and np.array_equal(a, b)
    seen = []
    counting = type(faces)(faces.landmarks, faces.rows, faces.issues, faces.point_names,
                           reader=lambda rows: (seen.append(len(rows)), faces.reader(rows))[1])
    stream = counting.chunks(48, prefetch=True)
    next(stream)
    stream.close()
    assert len(seen) <= 2  # the chunk handed over and at most the one decoded ahead of it


def test_a_mixing_conditions_embeddings_are_reused_only_for_the_same_faces(small_data, tiny_model, tmp_path):
    """A review of the store: freqmix embeddings were cached by (model, dataset, condition, seed) alone, so a run on
    a smaller budget reused another run's, mixed with other partners: the same config and seed gave other numbers
    (rank-1 0.25 against 0.167) depending on what the store held, and local and Ray campaigns disagreed."""
    common = _config(tiny_model, small_data, conditions=["clean", "freqmix:2"])
    small = common.model_copy(update={"max_images": 48})
    shared, fresh = tmp_path / "shared.duckdb", tmp_path / "fresh.duckdb"
    api.run_audit(common, shared)
    after, alone = api.run_audit(small, shared), api.run_audit(small, fresh)

    def mixed(db, run_id):
        with Store(db, read_only=True) as s:
            m = s.metrics(run_id)
        return m[m["condition"] == "freqmix:2"].set_index(["metric", "attribute", "group", "setting"])["value"]

    a, b = mixed(shared, after), mixed(fresh, alone)
    assert len(a) > 10 and a.sort_index().equals(b.sort_index())
