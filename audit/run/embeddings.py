"""The run's embedding pass: every condition a probe reads, embedded in one streaming pass over the faces
and cached in the store, and the faces under each condition exactly as they were embedded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import audit
from audit import conditions as cond_mod
from audit.config import AuditConfig, results_version
from audit.data import Dataset, Faces
from audit.data.loaders import CHUNK
from audit.models import LoadedModel
from audit.models.backends import NonFiniteOutput
from audit.probes import Artifact
from audit.store import Store


def cache_key(model: LoadedModel, dataset_id: str, condition: str, seed: int) -> tuple:
    """The store's key for the cached embeddings of ``model`` on a dataset under ``condition``: (model file SHA-256,
    dataset id, ``CONDITION@profile:SHA-256@BACKEND:WHERE@faceaudit:X.Y.x``, seed). The profile (channel order,
    normalisation, size, outputs) changes every embedding, so embeddings made under one profile are never reused under
    another; so do what computed them (onnxruntime's provider or the torch backend's device: equal only within the
    parity tolerance) and the faceaudit whose stored numbers mean the same (:func:`audit.config.results_version`:
    a release that changes how faces are read, aligned, conditioned or preprocessed bumps it). Until 0.11.0 neither
    was in the key, so a new release or a CPU run reused what an older release or a CUDA run had cached (a review of
    the probes). It rides in the condition column so a run's cached embeddings still go with it between stores
    (:func:`audit.store.transfer.export_run` selects them by model, dataset and seed)."""
    c = model.compute
    made = f"{c.backend}:{c.provider or c.device}@faceaudit:{results_version(audit.__version__)}"
    return (model.info.sha256, dataset_id, f"{condition}@profile:{model.profile.content_hash()}@{made}", int(seed))


@dataclass
class Embeddings:
    """Embeddings of a run's faces under each condition, computed in one streaming pass (:meth:`prepare`) and
    cached in the store; condition images on demand, exactly as they were embedded."""

    store: Store
    model: LoadedModel
    dataset: Dataset
    faces: Faces
    config: AuditConfig

    def _key(self, condition: str) -> tuple:
        return cache_key(self.model, self.dataset.dataset_id, condition, self.config.seed)

    def _cached(self, condition: str) -> np.ndarray | None:
        cached = self.store.cached_embeddings(*self._key(condition))
        if cached is None:
            return None
        rows, vectors = cached
        if cond_mod.mixes(condition) and not np.array_equal(rows, self.faces.rows):
            # A mixing condition's face depends on the faces chunked with it: embeddings another run made of other
            # faces (a smaller budget, another protocol's overrides) mixed other partners, so they are made again.
            return None
        pos = {int(r): i for i, r in enumerate(rows)}
        if not all(int(r) in pos for r in self.faces.rows):
            return None
        return vectors[[pos[int(r)] for r in self.faces.rows]]

    def _apply(self, condition: str, idx: np.ndarray, images: np.ndarray) -> np.ndarray:
        f = self.faces
        if condition == "clean":
            return images
        return cond_mod.apply(condition, images, f.landmarks[idx], f.point_names, f.rows[idx], self.config.seed)

    def prepare(self, conditions: list[str], progress: Callable[[float], None] = lambda fraction: None,
                prefetch: bool | None = None) -> None:
        """Embed every condition not yet in the store: each chunk of faces is decoded once, transformed by each
        condition and embedded, and only the embeddings are kept (written to the store per condition).
        ``progress`` gets the share of faces done after each chunk (it may raise to cancel). ``prefetch``
        (default: when inference runs on a GPU) decodes the next chunk while this one is embedded."""
        todo = [c for c in conditions if self._cached(c) is None]
        if not todo:
            return
        parts: dict[str, list[np.ndarray]] = {c: [] for c in todo}
        # Decoding the next chunk overlaps inference when inference runs on a GPU; on a 2-core CPU onnxruntime
        # already uses both cores (benchmarks/prefetch.py measures both ways).
        if prefetch is None:
            prefetch = self.model.compute.device == "cuda"
        for idx, images in self.faces.chunks(CHUNK, prefetch=prefetch):
            for c in todo:
                try:
                    parts[c].append(self.model.infer.embed(self._apply(c, idx, images)))
                except NonFiniteOutput as exc:  # name the photo, not a position in a chunk
                    raise exc.naming(lambda i: self.dataset.manifest["image"].iloc[int(self.faces.rows[idx[i]])],
                                     f" under {c}") from None
            progress(float(idx[-1] + 1) / len(self.faces))
        for c in todo:
            emb = np.concatenate(parts[c])
            self._warn_empty(c, emb)
            self.store.write_embeddings(*self._key(c), self.faces.rows, emb)

    def _warn_empty(self, condition: str, emb: np.ndarray) -> None:
        """One warning line when a recognition model gives some faces an all-zero template: such a face matches no
        one (cosine 0 against everything), so its genuine comparisons count as false non-matches. (Embeddings read
        back from the store, on a resumed run, were warned of when they were made.)"""
        import warnings

        from audit.errors import FaceAuditWarning

        if self.model.profile.kind != "embedding" or not len(emb):
            return
        empty = np.flatnonzero(np.abs(emb).max(axis=1) == 0)
        if len(empty):
            image = self.dataset.manifest["image"].iloc[int(self.faces.rows[empty[0]])]
            warnings.warn(FaceAuditWarning(
                f"{self.model.name}: an all-zero template for {len(empty)} of {len(emb)} faces under {condition} "
                f"(first: {image}); such a face matches no one: its genuine comparisons count as false non-matches "
                "(in effect a failure to enrol, which faceaudit does not report apart)"),
                stacklevel=2)

    def embeddings(self, condition: str) -> np.ndarray:
        """(N, D) embeddings under ``condition``, aligned with the faces."""
        cached = self._cached(condition)
        if cached is None:
            self.prepare([condition])
            cached = self._cached(condition)
        return cached

    def condition_images(self, condition: str, idx: np.ndarray) -> np.ndarray:
        """The faces at positions ``idx`` under ``condition``, as :meth:`prepare` embedded them (a condition that
        mixes faces, ``freqmix``, draws the partners from the face's own chunk, so whole chunks are decoded)."""
        idx = np.asarray(idx, dtype=np.int64)
        if not cond_mod.mixes(condition):
            return self._apply(condition, idx, self.faces.load(idx))
        out = None
        blocks = self.faces.blocks(CHUNK)
        for c in np.unique(idx // CHUNK):
            block = blocks[c]
            images = self._apply(condition, block, self.faces.load(block))
            out = np.empty((len(idx), *images.shape[1:]), images.dtype) if out is None else out
            sel = idx // CHUNK == c
            out[sel] = images[idx[sel] - c * CHUNK]
        return out


def examples(embed: Embeddings, config: AuditConfig, n: int = 6):
    """A PNG grid: the same few faces (columns) under every condition (rows). The faces come from the first
    chunk, so a condition that mixes faces shows exactly what was embedded at the cost of one chunk."""
    import cv2

    first = min(len(embed.faces), CHUNK)
    idx = np.linspace(0, first - 1, min(n, first)).astype(int)
    rows = [np.concatenate(list(embed.condition_images(c, idx)), axis=1) for c in config.conditions]
    grid = np.concatenate(rows, axis=0)
    ok, png = cv2.imencode(".png", grid[..., ::-1])
    return Artifact("conditions", "examples.png", "image/png", png.tobytes(),
                              {"conditions": config.conditions, "rows": embed.faces.rows[idx].tolist()})
