"""What a run reads: the sample world, the dataset a ``--data`` names, the model and its helper models
(and ``inspect``, which checks one model against data), the budget of faces a run uses, and the content
hashes that identify all of them."""

from __future__ import annotations

import platform
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

import numpy as np

import audit
from audit.config import AuditConfig
from audit.data import Dataset, Faces
from audit.devices import Compute
from audit.errors import ConfigError
from audit.intake import load as load_dataset
from audit.models import LoadedModel, ModelInfo, Profile, load_model_file
from audit.models import load as load_model
from audit.models.profile import infer_profile, profile_path, resolve_profile, save_profile
from audit.paths import out_folder
from audit.resources import cache_dir, sample_models_dir
from audit.seeding import rng_for

SAMPLE_MODELS = sample_models_dir()
MAX_PEOPLE, MAX_IMAGES = 100_000, 1_000
SAMPLE_MEMBERSHIP = "sample-membership"
"""``--data`` name of the membership probe's planted control (``sample-data --membership``)."""
"""Bounds of the synthetic set: beyond them a typo would fill the disk before anything useful happens."""


def sample_models() -> list[Path]:
    return sorted(SAMPLE_MODELS.glob("*.onnx"))


def sample_data(out: str | Path | None = None, people: int | None = None, images: int | None = None,
                membership: bool = False):
    """Materialise the synthetic evaluation set (or, with ``membership``, the membership probe's planted control:
    ``audit.synth.MembershipRecipe``); returns (folder, checksum, reused)."""
    from audit.synth import DEFAULT_MEMBERSHIP, DEFAULT_RECIPE, materialise

    if membership and people:
        raise ConfigError("--people: not used with --membership (its recipe is 200 training persons of the sample "
                          "models and 300 persons none of them saw)")
    recipe = DEFAULT_MEMBERSHIP if membership else DEFAULT_RECIPE
    for option, value, top in (("--people", people, MAX_PEOPLE), ("--images", images, MAX_IMAGES)):
        # 0 used to mean "the default" silently; a negative number crashed the generator.
        if value is not None and not 1 <= value <= top:
            raise ConfigError(f"{option}: must be between 1 and {top}, got {value}")
    if people or images:
        recipe = replace(recipe, images=images or recipe.images, **({} if membership else
                                                                    {"people": people or recipe.people}))
    out = out_folder(out) if out else cache_dir() / f"sample-{recipe.key()}"
    out.parent.mkdir(parents=True, exist_ok=True)
    return materialise(out, recipe)


def resolve_dataset(data: str, labels: str | Path | None = None, detector: str = "auto",
                    min_face_confidence: float = 0.9) -> Dataset:
    """The dataset named by ``data`` (``sample`` = the embedded set), with a labels file joined if given;
    ``detector`` says where its landmarks come from (a bad detector is refused here, before any work)."""
    if data in ("sample", SAMPLE_MEMBERSHIP):
        if Path(data).exists():  # a folder of one's own by that name: never audited in silence instead of it
            import warnings

            from audit.errors import FaceAuditWarning

            warnings.warn(FaceAuditWarning(f"--data {data}: the embedded synthetic set, not the folder ./{data} here "
                                           f"(give --data ./{data} to audit that)"), stacklevel=2)
        folder, _, _ = sample_data(membership=data == SAMPLE_MEMBERSHIP)
        data = folder
    dataset = load_dataset(data, detector, min_face_confidence)
    dataset.detector_obj()
    if labels is not None:
        from audit.data.labels import join_labels

        dataset, _ = join_labels(dataset, labels)
    return dataset


@dataclass(frozen=True)
class Inspection:
    """What ``inspect`` found: the file, its profile and where the profile came from."""

    info: ModelInfo
    profile: Profile
    profile_from_file: bool
    written: Path | None = None
    check: object | None = None
    """The preprocessing check (``audit.models.calibrate.Check``) when ``calibrate`` was asked for."""


def inspect_model(path: str | Path, write_profile: bool = False, profile: str | Path | None = None,
                  data: str | None = None, calibrate: bool = False, seed: int = 0, detector: str = "auto",
                  min_face_confidence: float = 0.9) -> Inspection:
    """Validate a model and describe it; optionally write the inferred profile next to it.

    With ``calibrate`` (needs ``data``), the preprocessing check ranks the usual colour orders and
    normalisations by how well the model does its own job on the data; ``write_profile`` then
    writes the best setting (the colour and normalisation fields count as measured, not guessed).
    """
    from audit.models.calibrate import run_check

    info = load_model_file(path)
    prof, from_file = resolve_profile(info, Path(profile) if profile else None)
    if calibrate and not data:
        raise ConfigError("--calibrate needs --data (a dataset to measure the model on)")
    written = profile_path(info.path) if write_profile else None
    if written is not None and written.exists():
        raise ConfigError(f"{written} already exists; edit it, or delete it to write a fresh inferred profile")
    check = None
    if calibrate:
        dataset = resolve_dataset(data, detector=detector, min_face_confidence=min_face_confidence)
        model = LoadedModel(info=info, profile=prof, profile_from_file=from_file)
        check = run_check(model, dataset, dataset.faces(tuple(prof.input.size)), seed)
    if written is not None:
        out = infer_profile(info) if not from_file else prof
        if check is not None and check.scores and not check.note:
            best = check.scores[0]
            spec = out.input.model_copy(update={"color": best["color"], "mean": tuple(best["mean"]),
                                                "std": tuple(best["std"]),
                                                **({"size": tuple(best["size"])} if best.get("size") else {})})
            out = out.model_copy(update={"input": spec, "guessed": [g for g in out.guessed if g not in (
                "input.color", "input.mean", "input.std", *(("input.size",) if best.get("size") else ()))]})
        save_profile(out, written)
    return Inspection(info, prof, from_file, written, check)


class Inputs(NamedTuple):
    """Everything a run reads from files, loaded and checked."""

    model: LoadedModel
    extra: dict
    """Helper models by option (``evaluator``, ``attacker_model``, ``attribute_model``; None when not given; and
    ``reference_models``, a list, only when given)."""
    surrogates: list
    dataset: Dataset

    def record(self, config: AuditConfig) -> dict:
        """The record a run of ``config`` on these inputs stores (settings plus content hashes)."""
        return {**config.to_record(), "inputs": content_hashes(self)}


def load_inputs(config: AuditConfig) -> Inputs:
    """(model, helper models by option, surrogates, dataset) of a run, with the helpers' kinds checked."""
    precision = config.precision()
    model = load_model(config.model, config.profile, config.device, config.batch_size, precision)
    extra = {k: load_model(getattr(config, k), None, config.device, config.batch_size, precision)
             if getattr(config, k) else None for k in ("evaluator", "attacker_model", "attribute_model")}
    surrogates = [load_model(p, None, config.device, config.batch_size, precision) for p in config.surrogates]
    references = [load_model(p, None, config.device, config.batch_size, precision) for p in config.reference_models]
    if extra["attribute_model"] is not None and extra["attribute_model"].profile.kind != "attributes":
        raise ConfigError(f"--attribute-model {config.attribute_model}: its profile is not an attributes model")
    # Helpers that compare faces must be face-recognition models: an attribute model's outputs would be
    # used as if they were identity embeddings and the numbers would mean nothing.
    for option, helper in [("--evaluator", extra["evaluator"]), ("--attacker-model", extra["attacker_model"]),
                           *[("--surrogate", s) for s in surrogates],
                           *[("--reference-model", r) for r in references]]:
        if helper is not None and helper.profile.kind != "embedding":
            raise ConfigError(f"{option} {helper.info.path}: its profile is not a face-recognition (embedding) "
                              "model")
    names: dict[str, Path] = {}
    for path, s in zip(config.surrogates, surrogates):  # each names its rows (transfer:NAME, beside transfer:any)
        odd = sorted(set(s.name) & set(";*?[]@+(),"))
        if s.name == "any" or s.name in names or odd:
            clash = ("the name of the rows over every surrogate" if s.name == "any" else
                     f"that of --surrogate {names[s.name]}" if s.name in names else
                     f"not a row name (it holds {' '.join(odd)}, which settings and rules read)")
            raise ConfigError(f"--surrogate {path}: its profile name {s.name!r} is {clash}; give it a sidecar profile "
                              "(MODEL.profile.yaml beside it) with a name of its own")
        names[s.name] = path
    if references:  # only when given, so the inputs of runs without them are recorded as before
        extra["reference_models"] = references
    return Inputs(model, extra, surrogates, resolve_dataset(config.data, config.labels, config.detector,
                                                            config.min_face_confidence))


def content_hashes(inputs: Inputs) -> dict:
    """Content hashes of everything a run reads from files, so ``--resume`` compares contents, not paths."""
    model, extra, surrogates, dataset = inputs
    helpers = {**extra, "surrogates": surrogates}
    # A helper's profile (colour order, normalisation, input size, heads) decides every number it gives as much as
    # its weights: recorded beside the files when the run has helpers, so that a campaign, --resume and a comparison
    # see a changed one (an evaluator's profile turned from RGB to BGR kept the record and the campaign hash, and its
    # embeddings of the same faces moved to cosine 0.3-0.6: a review of reproducibility).
    profiles = {k: [r.profile.content_hash() for r in m] if isinstance(m, list) else m.profile.content_hash()
                for k, m in helpers.items() if m}  # the helpers given only: no field where two runs both have none
    return {"model": model.info.sha256, "dataset": dataset.dataset_id, "profile": model.profile.content_hash(),
            **{k: [r.info.sha256 for r in m] if isinstance(m, list) else m.info.sha256 if m is not None else None
               for k, m in extra.items()},
            "surrogates": [m.info.sha256 for m in surrogates],
            **({"helper_profiles": profiles} if profiles else {}),
            # The face detector's SHA-256 and settings, only when one found the faces (so the records, and the
            # campaign hashes, of runs on datasets with landmarks are what they were before detection existed).
            # With a detector the dataset id is not the file fingerprint (it hashes in the detector key), so the
            # plain fingerprint is recorded beside it for evidence that names the files.
            **({"detector": dataset.acquisition_key, "files": dataset.fingerprint} if dataset.acquisition_key
               else {})}


def _subset(faces: Faces, dataset: Dataset, max_images: int, max_subjects: int | None, seed: int) -> Faces:
    """The faces a run uses: whole persons in a seeded order, up to ``max_subjects`` persons (when set) and
    while their images fit the ``max_images`` budget (at least one person). Budgets count images, not
    persons, so a dataset with one image per person is not cut to a few hundred images."""
    subjects = dataset.manifest["subject"].to_numpy()[faces.rows]
    uniq, counts = np.unique(subjects, return_counts=True)
    if len(faces.rows) <= max_images and (max_subjects is None or len(uniq) <= max_subjects):
        return faces
    order = rng_for(seed, "subjects").permutation(len(uniq))
    if max_subjects is not None:
        order = order[:max_subjects]
    total = np.cumsum(counts[order])
    take = order[: max(1, int(np.searchsorted(total, max_images, side="right")))]
    return faces.take(np.isin(subjects, uniq[take]))


def environment(compute: Compute, precision: str, threads: int) -> dict:
    """Versions, platform, device, backend and thread plan, stored with every run: ``compute`` says where and through
    which backend the run computes (:class:`audit.devices.Compute`), the precision of its gradient attacks and
    torch's threads (``threads``: :meth:`audit.config.AuditConfig.threads`)."""
    pkgs = {}
    for name in ("numpy", "scipy", "scikit-learn", "onnx", "onnxruntime", "onnx2torch", "torch", "duckdb", "pandera",
                 "weasyprint", "matplotlib"):
        try:
            pkgs[name] = version(name)
        except PackageNotFoundError:
            pkgs[name] = None
    from audit.threads import plan

    return {"faceaudit": audit.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": compute.device, "compute": compute.stored(precision, threads),
            "packages": pkgs, "threads": plan(threads)}
