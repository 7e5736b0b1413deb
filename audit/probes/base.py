"""The probe protocol, result records and the registry.

A probe is a pure function of (model, dataset, config, seed) to metric records and
artifacts. It never writes SQL or HTML: ``audit.run`` stores its result and the report
renders it. Built-in probes register with ``@register``; third-party probes arrive through
the ``audit.probes`` entry-point group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Callable, ClassVar, Protocol

import numpy as np

from audit.config import AuditConfig
from audit.data import Dataset, Faces
from audit.metrics.stats import highest, mask_positions, negatives_kept
from audit.models import LoadedModel
from audit.records import MetricRecord  # noqa: F401  (re-exported: probes and plugins import it from here)


@dataclass(frozen=True)
class Artifact:
    """A plot, image grid or curve kept with the run."""

    probe: str
    name: str
    mime: str
    data: bytes
    meta: dict = field(default_factory=dict)

    @classmethod
    def json(cls, probe: str, name: str, obj, **meta) -> "Artifact":
        return cls(probe, name, "application/json", json.dumps(obj).encode(), meta)


OUTCOMES = "outcomes.json"
"""Artifact name of a probe's per-unit outcomes (:func:`outcomes_artifact`)."""


def kept_impostors(scores: np.ndarray, mask: np.ndarray, rate: float) -> dict:
    """The ``negatives`` and ``negative_pairs`` of a ``share_at_rate`` series (:func:`outcomes_artifact`): the highest
    of ``scores`` (the True entries of ``mask`` in row-major order), as many as
    :func:`audit.metrics.stats.negatives_kept` says, and their (row, column) in ``mask``."""
    top = highest(scores, negatives_kept(len(scores), rate))
    rows, cols = mask_positions(mask, top)
    return {"negatives": scores[top], "negative_pairs": np.stack([rows, cols], 1)}


def outcomes_artifact(probe: str, rows: np.ndarray, subjects: np.ndarray, series: list[dict],
                      groups: dict[str, np.ndarray] | None = None, gallery: dict | None = None) -> Artifact:
    """The per-unit outcomes behind a probe's headline metrics, kept so that runs of several models on the same
    persons can be compared *paired* (audit/compare draws the same persons for every model).

    ``rows``: each unit's manifest row (the key that pairs units across runs); ``subjects``: its person.
    ``series``: one dict per headline metric, with ``metric``, ``condition``, ``setting``, ``attribute`` and a
    ``kind``: ``share`` (``values``: one 0/1 outcome per unit; the metric is their mean) or ``gain``
    (``y``: class per unit, -1 where unlabelled; ``pred``: one list of predictions per cross-validation repeat;
    ``k`` classes; the metric is the normalised gain of balanced accuracy, averaged over repeats) or ``auc``
    (``y``: 1 / 0 per unit; ``scores``: one list of scores per cross-validation repeat; the metric is the AUC of
    the scores for ``y`` = 1 against ``y`` = 0, averaged over repeats).
    A series may carry ``units``: positions in ``rows`` it covers (default: every unit), when it is measured on
    a subset (the white-box inversion's victims).
    ``share_at_rate`` (identity's TAR at an FMR): the share of ``positives`` (one genuine score per unit) at or above
    the threshold that puts ``rate`` of the impostor comparisons (every unit against every gallery image of another
    person) above it; ``negatives`` are the highest impostor scores (as many as
    :func:`audit.metrics.stats.negatives_kept` says), ``negative_pairs`` their (unit, gallery position). With
    ``impostors: within`` (inversion's SAR) the impostor comparisons are instead between two of the artifact's units
    (each against every later one of another person), ``negative_pairs`` their two positions in ``rows``.
    ``groups``: per attribute, each unit's group (None: no group), for per-group shares.
    ``gallery`` (identity): the gallery images' ``rows``, ``subjects`` and ``groups``, for series of kind
    ``pair_share``: a share of (unit, gallery image) comparisons, e.g. a group's FMR; ``accepts`` lists the
    (unit, gallery position) pairs counted, the comparisons are the impostor ones (different persons) between
    the series' ``group`` on both sides.
    ``folds`` (membership's strongest attack): ``y`` (1 member, 0 not), ``folds`` (k), ``cv`` (per cross-validation
    repeat, its folds: ``train`` and ``test`` positions with the attack's ``train_scores`` and ``test_scores``),
    ``rate`` (TPR at that false-positive rate; absent: the AUC) and ``fitted`` (the share of folds whose attack was
    fitted, the learned attacker, which scales the fit variance a comparison adds; absent: every fold)."""
    def plain(a):
        return [None if v is None or (isinstance(v, float) and np.isnan(v)) else
                (v.item() if hasattr(v, "item") else v) for v in np.asarray(a, dtype=object)]

    doc = {"rows": [int(r) for r in rows], "subjects": [str(x) for x in subjects],
           "groups": {a: plain(g) for a, g in (groups or {}).items()},
           "series": [{k: (np.asarray(v).astype(int).tolist() if k in ("values", "y", "units", "accepts",
                                                                       "negative_pairs") else
                           [np.asarray(p).astype(int).tolist() for p in v] if k == "pred" else
                           [np.asarray(p, float).round(9).tolist() for p in v] if k == "scores" else
                           np.asarray(v, float).round(9).tolist() if k in ("positives", "negatives") else v)
                       for k, v in sd.items()} for sd in series]}
    if gallery is not None:
        doc["gallery"] = {"rows": [int(r) for r in gallery["rows"]], "subjects": [str(x) for x in gallery["subjects"]],
                          "groups": {a: plain(g) for a, g in gallery["groups"].items()}}
    return Artifact.json(probe, OUTCOMES, doc)


@dataclass
class ProbeResult:
    metrics: list[MetricRecord] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Plain-language remarks (skipped thresholds, fallbacks) shown in the report."""


ProgressFn = Callable[[float, str], None]


@dataclass
class ProbeContext:
    """What a probe may use. Embeddings come through ``embeddings`` (cached in the store)."""

    model: LoadedModel
    dataset: Dataset
    faces: Faces
    config: AuditConfig
    embeddings: Callable[[str], np.ndarray]
    """condition name -> (N, D) embeddings aligned with ``faces`` rows."""
    condition_images: Callable[[str, np.ndarray], np.ndarray]
    """(condition name, positions in ``faces``) -> (n, H, W, 3) images under that condition, as they were
    embedded. Faces are decoded on demand: load only what the probe uses (``faces.load(idx)``)."""
    progress: ProgressFn = lambda fraction, message: None
    evaluator: LoadedModel | None = None
    """Independent model judging reconstructions (inversion), when the config names one."""
    attacker_model: LoadedModel | None = None
    """Attacker-side FR model for the inversion decoder's identity loss."""
    attribute_model: LoadedModel | None = None
    """Attribute model reading attributes from reconstructions."""
    surrogates: list = field(default_factory=list)
    """Surrogate models (LoadedModel) for the cloak probe's transfer setting."""
    reference_models: list = field(default_factory=list)
    """Reference FR models (LoadedModel) that never saw the audited persons: the membership probe's calibration."""

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def subjects(self) -> np.ndarray:
        return self.dataset.manifest["subject"].to_numpy()[self.faces.rows]

    def column(self, name: str) -> np.ndarray:
        return self.dataset.manifest[name].to_numpy()[self.faces.rows]


class Probe(Protocol):
    name: ClassVar[str]
    title: ClassVar[str]
    """Short human title for reports and the TUI."""
    needs_embedding: ClassVar[bool]
    """Optional (default False): the probe runs only on face-recognition (embedding) models, so campaigns and
    the demo leave it out for attribute models (:func:`supported`)."""
    white_box: ClassVar[bool]
    """Optional (default False): the probe attacks the model through its gradients (the torch backend), so the run
    checks that backend's parity with onnxruntime first and withdraws it when it fails (:func:`white_box`)."""

    def check(self, ctx_config: AuditConfig, dataset: Dataset, model: LoadedModel) -> None:
        """Raise ConfigError for settings this probe cannot run with, before anything runs."""

    def run(self, ctx: ProbeContext) -> ProbeResult: ...


def conditions_read(probe, config: AuditConfig) -> list[str]:
    """The conditions whose embeddings ``probe`` reads: its ``conditions(config)`` when it defines one (an
    optional part of the protocol), else every condition of the run. The run embeds them in one pass before
    any probe starts; a probe may still ask for others, which are then embedded on demand."""
    pick = getattr(probe, "conditions", None)
    return list(pick(config)) if callable(pick) else list(config.conditions)


REGISTRY: dict[str, type] = {}

def white_box(probe) -> bool:
    """Whether ``probe`` (a class or an instance) attacks the model through its gradients."""
    return bool(getattr(probe, "white_box", False))


def needs_embedding(probe) -> bool:
    """Whether ``probe`` (a class or an instance) runs only on face-recognition (embedding) models."""
    return bool(getattr(probe, "needs_embedding", False))


def supported(kind: str, opt_in: bool = False) -> list[str]:
    """Names of the registered probes a model of profile ``kind`` (``embedding`` or ``attributes``) can be
    audited with: all of them for an embedding model, those that do not need embeddings otherwise. Probes that
    need labels most datasets lack (``opt_in = True`` on the class: membership needs ``member``) are left out of
    this default set unless ``opt_in``; they run when named."""
    return [name for name, cls in REGISTRY.items() if (kind == "embedding" or not needs_embedding(cls))
            and (opt_in or not getattr(cls, "opt_in", False))]


def register(cls):
    """Class decorator adding a built-in probe to :data:`REGISTRY`."""
    REGISTRY[cls.name] = cls
    return cls


def load_plugins() -> None:
    """Register probes from the ``audit.probes`` entry-point group (third-party packages)."""
    for ep in entry_points(group="audit.probes"):
        cls = ep.load()
        REGISTRY.setdefault(cls.name, cls)


def require(names) -> None:
    """Refuse a name that is no registered probe (one-line error naming the first and the probes there are)."""
    from audit.errors import ConfigError

    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ConfigError(f"unknown probe {unknown[0]!r}; available probes: {', '.join(sorted(REGISTRY))}")


def get(name: str):
    require([name])
    return REGISTRY[name]()
