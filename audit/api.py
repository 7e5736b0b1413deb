"""The one entry point: everything the CLI and the TUI do goes through these functions.

* :func:`run_audit` - run probes on a model and a dataset into the store
* :func:`inspect_model` - validate an ONNX file and describe it
* :func:`sample_data` - materialise the embedded synthetic dataset
* :func:`build_report` / :func:`compare` - render HTML/PDF from the store alone
* :func:`evaluate_rules` - (re-)apply rule packs to a stored run
* :func:`export_run` / :func:`attest_run` / :func:`verify_bundle` / :func:`keygen` / :func:`gate` - evidence
* :func:`run_campaign` / :func:`run_cells` - models x datasets into one store (local or Ray executor)
* :func:`demo` - the whole battery on the sample models (a campaign)
"""

from __future__ import annotations

import json
import platform
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

import audit
from audit.atomic import write_atomic
from audit import conditions as cond_mod
from audit import probes as probe_mod
from audit.config import AuditConfig  # noqa: F401  (re-exported)
from audit.data import Dataset, Faces
from audit.data.budget import cap_per_person, capped
from audit.data.loaders import CHUNK
from audit.data import load as load_dataset
from audit.errors import ConfigError, FaceAuditError
from audit.models import LoadedModel, ModelInfo, Profile, load_model_file, parity_check
from audit.models import load as load_model
from audit.models.profile import infer_profile, profile_path, resolve_profile, save_profile
from audit.resources import cache_dir, sample_models_dir
from audit.seeding import rng_for
from audit.store import Store

SAMPLE_MODELS = sample_models_dir()
MAX_PEOPLE, MAX_IMAGES = 100_000, 1_000
"""Bounds of the synthetic set: beyond them a typo would fill the disk before anything useful happens."""
ProgressFn = Callable[[str, float, str], None]
"""progress(probe, fraction 0..1, message)."""


class Cancelled(FaceAuditError):
    """The run was cancelled by the user."""


# ---------------------------------------------------------------------------- models
@dataclass(frozen=True)
class Inspection:
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
                                                "std": tuple(best["std"])})
            out = out.model_copy(update={"input": spec, "guessed": [g for g in out.guessed if g not in (
                "input.color", "input.mean", "input.std")]})
        save_profile(out, written)
    return Inspection(info, prof, from_file, written, check)


def sample_models() -> list[Path]:
    return sorted(SAMPLE_MODELS.glob("*.onnx"))


# ---------------------------------------------------------------------------- data
def sample_data(out: str | Path | None = None, people: int | None = None, images: int | None = None):
    """Materialise the synthetic evaluation set; returns (folder, checksum, reused)."""
    from audit.synth import DEFAULT_RECIPE, materialise

    recipe = DEFAULT_RECIPE
    for option, value, top in (("--people", people, MAX_PEOPLE), ("--images", images, MAX_IMAGES)):
        # 0 used to mean "the default" silently; a negative number crashed the generator.
        if value is not None and not 1 <= value <= top:
            raise ConfigError(f"{option}: must be between 1 and {top}, got {value}")
    if people or images:
        recipe = replace(recipe, people=people or recipe.people, images=images or recipe.images)
    out = _out_folder(out) if out else cache_dir() / f"sample-{recipe.key()}"
    out.parent.mkdir(parents=True, exist_ok=True)
    return materialise(out, recipe)


def resolve_dataset(data: str, labels: str | Path | None = None, detector: str = "auto",
                    min_face_confidence: float = 0.9) -> Dataset:
    """The dataset named by ``data`` (``sample`` = the embedded set), with a labels file joined if given;
    ``detector`` says where its landmarks come from (a bad detector is refused here, before any work)."""
    if data == "sample":
        folder, _, _ = sample_data()
        data = folder
    dataset = load_dataset(data, detector, min_face_confidence)
    dataset.detector_obj()
    if labels is not None:
        from audit.data.labels import join_labels

        dataset, _ = join_labels(dataset, labels)
    return dataset


def prepare(data: str, out: str | Path, detector: str = "auto", min_face_confidence: float = 0.9, size: int = 112):
    """Write an aligned copy of a dataset (faces, ``manifest.csv`` with landmarks, ``quality.csv`` of the
    images that could not be used); ``out`` must be new or empty. Returns :class:`audit.intake.prepare.Prepared`."""
    from audit.config import make_config
    from audit.intake.prepare import prepare as _prepare

    make_config(model=Path("-"), data=data, detector=detector, min_face_confidence=min_face_confidence)
    return _prepare(resolve_dataset(data, detector=detector, min_face_confidence=min_face_confidence), Path(out), size)


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


# ---------------------------------------------------------------------------- runs
def environment(device: str) -> dict:
    pkgs = {}
    for name in ("numpy", "scipy", "scikit-learn", "onnx", "onnxruntime", "onnx2torch", "torch", "duckdb", "pandera",
                 "weasyprint", "matplotlib"):
        try:
            pkgs[name] = version(name)
        except PackageNotFoundError:
            pkgs[name] = None
    from audit.threads import plan

    return {"faceaudit": audit.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": device, "packages": pkgs, "threads": plan()}


def validate_config(config: AuditConfig, model: LoadedModel, dataset: Dataset) -> list:
    """Every check that can fail before anything is written; returns the probe objects."""
    probe_mod.load_plugins()
    if not config.probes:
        raise ConfigError("no probes selected")
    probes = [probe_mod.get(p) for p in config.probes]
    for c in config.conditions:
        cond_mod.parse(c)
    for p in probes:
        p.check(config, dataset, model)
    return probes


def check_config(config: AuditConfig, packs: list[str] | None = None) -> None:
    """Everything :func:`run_audit` would refuse, checked without writing anything (for the TUI)."""
    from audit.rules import load_pack

    model, _, _, dataset = _load_inputs(config)  # the same loading and helper checks as run_audit
    validate_config(config, model, dataset)
    for p in packs or []:
        load_pack(p)


def _load_inputs(config: AuditConfig):
    """(model, helper models by option, surrogates, dataset) of a run, with the helpers' kinds checked."""
    precision = config.precision()
    model = load_model(config.model, config.profile, config.device, config.batch_size, precision)
    extra = {k: load_model(getattr(config, k), None, config.device, config.batch_size, precision)
             if getattr(config, k) else None for k in ("evaluator", "attacker_model", "attribute_model")}
    surrogates = [load_model(p, None, config.device, config.batch_size, precision) for p in config.surrogates]
    if extra["attribute_model"] is not None and extra["attribute_model"].profile.kind != "attributes":
        raise ConfigError(f"--attribute-model {config.attribute_model}: its profile is not an attributes model")
    # Helpers that compare faces must be face-recognition models: an attribute model's outputs would be
    # used as if they were identity embeddings and the numbers would mean nothing.
    for option, helper in [("--evaluator", extra["evaluator"]), ("--attacker-model", extra["attacker_model"]),
                           *[("--surrogate", s) for s in surrogates]]:
        if helper is not None and helper.profile.kind != "embedding":
            raise ConfigError(f"{option} {helper.info.path}: its profile is not a face-recognition (embedding) "
                              "model")
    return model, extra, surrogates, resolve_dataset(config.data, config.labels, config.detector,
                                                     config.min_face_confidence)


def run_audit(config: AuditConfig, db: str | Path = "faceaudit.duckdb", progress: ProgressFn | None = None,
              cancel: threading.Event | None = None, resume: str | None = None) -> str:
    """Run the configured probes and store every number; returns the run id.

    Each probe's metrics and artifacts are committed in one transaction. Ctrl-C or
    ``cancel`` ends the run ``cancelled`` with finished probes kept; an error ends it
    ``failed``. ``resume`` finishes an earlier (interrupted/failed/cancelled) run, skipping
    the probes it completed.
    """
    progress = progress or (lambda probe, fraction, message: None)
    from audit.store.db import preflight

    preflight(db)
    model, extra, surrogates, dataset = _load_inputs(config)
    probes = validate_config(config, model, dataset)
    # Streaming: the budget is taken on the manifest (files only screened, nothing decoded); the chosen faces are
    # then decoded once to find files that do not decode, keeping no pixels (each step decodes what it uses).
    faces_all = dataset.faces(tuple(model.profile.input.size), verify=False)
    chosen = _subset(cap_per_person(faces_all, dataset, config.setting("max_images_per_subject"), config.seed), dataset,
                     config.setting("max_images"), config.setting("max_subjects"), config.seed)
    faces = dataset.usable(chosen.verified())
    record = {**config.to_record(), "inputs": _inputs(model, dataset, extra, surrogates)}
    check = None
    if not resume:
        from audit.models.calibrate import run_check

        progress("preprocessing", 0.0, "checking the profile against the data")
        check = run_check(model, dataset, faces, config.seed)
        if check.better and not config.accept_profile:
            raise ConfigError(check.message(model.name))  # before anything is written
        progress("preprocessing", 1.0, "done")
    with Store(db) as store:
        if resume:  # checked before anything is written: a refused resume leaves the store as it was
            run_id = store.resolve_run(resume)
            _check_resume(store.run(run_id), record)
        store.upsert_model(model.info, model.profile)
        store.upsert_dataset(dataset, faces.issues + dataset.label_issues)
        if resume:
            done = set(store.probes(run_id).query("status == 'completed'")["probe"])
            store.set_run_status(run_id, "running")
        else:
            run_id = store.create_run(model.info.sha256, dataset.dataset_id, record, config.seed,
                                      environment(model.ort.device))
            done = set()
        try:
            if config.parity and not resume:
                progress("parity", 0.0, "checking torch backend against onnxruntime")
                store.set_parity(run_id, _parity(model, faces))
                progress("parity", 1.0, "done")
            embed = _Embeddings(store, model, dataset, faces, config)

            def reporter(name: str):
                """Progress of step ``name``, raising Cancelled once the run is cancelled."""
                def report(fraction: float, message: str) -> None:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("cancelled")
                    progress(name, fraction, message)
                return report

            t0 = time.perf_counter()
            # One pass for every condition a pending probe reads (a probe that reads only some names them).
            todo = [p for p in probes if p.name not in done]
            embedding = reporter("embeddings")
            embed.prepare([c for c in config.conditions if any(c in probe_mod.conditions_read(p, config) for p in todo)],
                          lambda fraction: embedding(fraction, "decoding, transforming and embedding the faces in "
                                                               f"chunks of {CHUNK}"))
            seconds = time.perf_counter() - t0
            progress("embeddings", 1.0, "done")
            if not resume:
                with store.transaction():
                    _write_result(store, run_id, probe_mod.ProbeResult(
                        artifacts=[_examples(embed, config), _used(dataset, faces_all, chosen, faces, config),
                                   probe_mod.Artifact.json("conditions", "embeddings.json", {
                                       "seconds": round(seconds, 3), "chunk": CHUNK, "images": len(faces),
                                       "conditions": config.conditions}),
                                   probe_mod.Artifact.json("models", "preprocessing.json",
                                                           check.to_dict() | {"accepted": config.accept_profile})]))
                    _write_acquisition(store, run_id, dataset, config)
            for probe in probes:
                if probe.name in done:
                    progress(probe.name, 1.0, "already completed (resumed)")
                    continue
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled")

                report = reporter(probe.name)
                ctx = probe_mod.ProbeContext(model=model, dataset=dataset, faces=faces, config=config,
                                             embeddings=embed.embeddings, condition_images=embed.condition_images,
                                             progress=report, surrogates=surrogates, **extra)
                started, t0 = datetime.now().replace(microsecond=0), time.perf_counter()
                report(0.0, "starting")
                result = probe.run(ctx)
                with store.transaction():
                    _write_result(store, run_id, result)
                    store.record_probe(run_id, probe.name, "completed", started, time.perf_counter() - t0,
                                       " ".join(result.notes))
            store.set_run_status(run_id, "completed")
        except (KeyboardInterrupt, Cancelled):
            store.set_run_status(run_id, "cancelled", "cancelled by the user")
            raise Cancelled(f"run {run_id} cancelled; finished probes are kept (resume with --resume {run_id})") \
                from None
        except Exception as exc:
            store.set_run_status(run_id, "failed", f"{type(exc).__name__}: {exc}")
            raise
    return run_id


def _inputs(model: LoadedModel, dataset: Dataset, extra: dict, surrogates: list) -> dict:
    """Content hashes of everything a run reads from files, so ``--resume`` compares contents, not paths."""
    import hashlib

    # The profile's name and its list of unconfirmed guesses do not change a single number.
    prof = model.profile.model_dump_json(exclude={"name", "guessed"})
    return {"model": model.info.sha256, "dataset": dataset.dataset_id,
            "profile": hashlib.sha256(prof.encode()).hexdigest(),
            **{k: m.info.sha256 if m is not None else None for k, m in extra.items()},
            "surrogates": [m.info.sha256 for m in surrogates],
            # The face detector's SHA-256 and settings, only when one found the faces (so the records, and the
            # campaign hashes, of runs on datasets with landmarks are what they were before detection existed).
            # With a detector the dataset id is not the file fingerprint (it hashes in the detector key), so the
            # plain fingerprint is recorded beside it for evidence that names the files.
            **({"detector": dataset.acquisition_key, "files": dataset.fingerprint} if dataset.acquisition_key
               else {})}


def _check_resume(run: dict, record: dict) -> None:
    """Refuse to resume a run with settings that would store other results under its id."""
    from audit.config import resume_conflicts

    if run["status"] == "running":
        raise ConfigError(f"--resume {run['run_id']}: the run is still running in process {run['pid']} on "
                          f"{run['host']}; wait for it or stop it first")
    stored = dict(run["config"])
    # Runs stored before input hashes were recorded still name their model and dataset by hash.
    stored.setdefault("inputs", {"model": run["model_id"], "dataset": run["dataset_id"]})
    diffs = resume_conflicts(stored, record)
    if diffs:
        raise ConfigError(f"--resume {run['run_id']}: refusing, the stored run used other settings: "
                          f"{'; '.join(diffs)}. Give the run's own settings, or start a new run without --resume")


def _parity(model: LoadedModel, faces: Faces) -> dict:
    backend = model.torch()
    if backend is None:
        return {"available": False, "reason": model.torch_error}
    batch = faces.load(np.arange(min(16, len(faces))))
    res = parity_check(model.ort, backend, batch)
    return {"available": True, **res.to_dict(), "conversion": backend.conversion}


@dataclass
class _Embeddings:
    """Embeddings of a run's faces under each condition, computed in one streaming pass (:meth:`prepare`) and
    cached in the store; condition images on demand, exactly as they were embedded."""

    store: Store
    model: LoadedModel
    dataset: Dataset
    faces: Faces
    config: AuditConfig

    def _key(self, condition: str) -> tuple:
        return (self.model.info.sha256, self.dataset.dataset_id, condition, self.config.seed)

    def _cached(self, condition: str) -> np.ndarray | None:
        cached = self.store.cached_embeddings(*self._key(condition))
        if cached is None:
            return None
        rows, vectors = cached
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
            prefetch = self.model.ort.device == "cuda"
        for idx, images in self.faces.chunks(CHUNK, prefetch=prefetch):
            for c in todo:
                parts[c].append(self.model.ort.embed(self._apply(c, idx, images)))
            progress(float(idx[-1] + 1) / len(self.faces))
        for c in todo:
            self.store.write_embeddings(*self._key(c), self.faces.rows, np.concatenate(parts[c]))

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


def _used(dataset: Dataset, faces_all: Faces, chosen: Faces, faces: Faces, config: AuditConfig):
    """What the run actually used, for the report: images and persons after unusable images and the
    preset's cap, next to the manifest's totals, and whether the data are the synthetic sample world.
    (Files outside the budget are screened without being decoded, so one that does not decode is only
    found when a run uses it.)"""
    subjects = dataset.manifest["subject"].to_numpy()
    per_person = config.setting("max_images_per_subject")
    capped_persons, capped_images = capped(subjects[faces_all.rows], per_person)
    return probe_mod.Artifact.json("dataset", "used.json", {
        "max_images_per_subject": per_person, "capped_persons": capped_persons, "capped_images": capped_images,
        "manifest_images": int(len(dataset.manifest)), "manifest_persons": int(dataset.n_subjects),
        "readable_images": int(len(faces_all) - (len(chosen) - len(faces))), "images": int(len(faces)),
        "persons": int(len(np.unique(subjects[faces.rows]))), "max_images": int(config.setting("max_images")),
        "max_subjects": config.setting("max_subjects"),
        "synthetic": (Path(dataset.root) / "recipe.json").is_file(),
        "attributes": list(dataset.attributes)})


def _write_acquisition(store: Store, run_id: str, dataset: Dataset, config: AuditConfig) -> None:
    """Failure to acquire, when a detector found the faces: ``fta_rate`` overall and per group (probe
    ``acquisition``), the detector and per-image outcome, and a thumbnail grid of the photos that failed."""
    from audit.intake.acquire import failure_grid, fta_metrics

    acq = dataset.acquisition()
    if acq is None:
        return
    started = datetime.now().replace(microsecond=0)
    metrics = fta_metrics(acq, dataset.manifest, dataset.attributes, config.setting("bootstrap"), config.seed)
    arts = [probe_mod.Artifact.json("acquisition", "acquisition.json", acq.summary())]
    grid = failure_grid([Path(p) for p in dataset.manifest["_path"]], acq.issues, acq.confidence,
                        dataset.manifest["subject"].astype(str).to_numpy())
    if grid is not None:
        arts.append(probe_mod.Artifact("acquisition", "failures.png", "image/png", grid[0], {"tiles": grid[1]}))
    _write_result(store, run_id, probe_mod.ProbeResult(metrics=metrics, artifacts=arts))
    store.record_probe(run_id, "acquisition", "completed", started, acq.seconds,
                       f"{acq.detected} image(s) detected, {acq.cache_hits} from the landmark cache")


def _examples(embed: "_Embeddings", config: AuditConfig, n: int = 6):
    """A PNG grid: the same few faces (columns) under every condition (rows). The faces come from the first
    chunk, so a condition that mixes faces shows exactly what was embedded at the cost of one chunk."""
    import cv2

    first = min(len(embed.faces), CHUNK)
    idx = np.linspace(0, first - 1, min(n, first)).astype(int)
    rows = [np.concatenate(list(embed.condition_images(c, idx)), axis=1) for c in config.conditions]
    grid = np.concatenate(rows, axis=0)
    ok, png = cv2.imencode(".png", grid[..., ::-1])
    return probe_mod.Artifact("conditions", "examples.png", "image/png", png.tobytes(),
                              {"conditions": config.conditions, "rows": embed.faces.rows[idx].tolist()})


def _write_result(store: Store, run_id: str, result) -> None:
    from dataclasses import asdict

    if result.metrics:
        df = pd.DataFrame([asdict(m) for m in result.metrics])
        df.insert(0, "run_id", run_id)
        df["n"] = df["n"].astype("int64")
        for c in ("value", "ci_low", "ci_high"):
            df[c] = pd.to_numeric(df[c], errors="coerce").replace([np.inf, -np.inf], np.nan)
        store.write("metrics", df)
    if result.artifacts:
        store.write("artifacts", pd.DataFrame([{
            "run_id": run_id, "probe": a.probe, "name": a.name, "mime": a.mime, "data": a.data,
            "meta": json.dumps(a.meta)} for a in result.artifacts]))


# ---------------------------------------------------------------------------- reading
def list_runs(db: str | Path) -> pd.DataFrame:
    if not Path(db).exists():
        return pd.DataFrame(columns=["run_id", "model", "dataset", "status", "started_at", "n_pass", "n_warn", "n_fail"])
    with Store(db, read_only=True) as store:
        return store.runs()


def _require(db: str | Path) -> None:
    """Reading commands must not create an empty store by accident."""
    from audit.errors import StoreError

    if str(db) != ":memory:" and not Path(db).exists():
        raise StoreError(f"{db}: no such database (run an audit first, e.g. 'faceaudit demo')")


def show_run(run_ref: str, db: str | Path) -> dict:
    _require(db)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        return {"run": store.run(run_id), "probes": store.probes(run_id), "findings": store.findings(run_id),
                "metrics": store.metrics(run_id)}


def headline_table(run_refs: list[str], db: str | Path) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Headline measures of several runs as text cells: (column labels, [(measure, cells)])."""
    from audit.report.narrative import fmt
    from audit.report.render import headline_rows

    _require(db)
    with Store(db, read_only=True) as store:
        _, labels, rows = headline_rows(store, [store.resolve_run(r) for r in run_refs])
    text = [(r["label"], ["-" if c is None else f"{fmt(c['value'], 3)} [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"
                          for c in r["cells"]]) for r in rows]
    return labels, text


def evaluate_rules(run_ref: str, db: str | Path, packs: list[str] | None = None) -> pd.DataFrame:
    """Apply rule packs (ids or paths; default every pack under rules/) to a stored run.

    Findings replace earlier ones of the same pack for that run. Returns the findings.
    """
    from audit.rules.engine import evaluate, load_packs

    loaded = load_packs(packs)
    _require(db)
    with Store(db) as store:
        run_id = store.resolve_run(run_ref)
        metrics = store.metrics(run_id)
        probes_run = set(store.probes(run_id).query("status == 'completed'")["probe"])
        frames = [evaluate(pack, run_id, metrics, probes_run) for pack in loaded]
        with store.transaction():
            for pack, df in zip(loaded, frames):
                store.delete_findings(run_id, pack.pack)
                store.write("findings", df)
        return store.findings(run_id)


# ---------------------------------------------------------------------------- reports
def build_report(run_ref: str, db: str | Path, out_dir: str | Path, formats: list[str] | None = None,
                 no_faces: bool = False, packs: list[str] | None = None, sign_key: str | Path | None = None,
                 signer: str | None = None) -> list[Path]:
    """Render a stored run to HTML and/or PDF (from the store alone); returns the written files.

    The PDF is PDF/A-3b with the JSON results attached. With ``sign_key`` the report ends with an
    attestation page, and the results JSON plus a signed in-toto bundle (``.intoto.json``) covering
    the model, the dataset and every written file are written beside it.
    """
    from audit.evidence import attest, export
    from audit.report.pdf import write_pdf
    from audit.report.render import render_run, write_text_atomic

    formats = formats or ["html", "pdf"]
    bad = [f for f in formats if f not in ("html", "pdf")]
    if bad:
        raise ConfigError(f"--format: unknown format(s) {bad}; use html and/or pdf")
    sig = attest.Signer.load(sign_key, signer) if sign_key else None  # a bad key fails before anything is written
    _require(db)
    out_dir = _out_folder(out_dir)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        run = store.run(run_id)
        suffixes = [f".{f}" for f in formats] + ([".results.json", ".intoto.json"] if sig else [])
        stem = _free_stem(out_dir / f"report-{_safe(run['model_name'])}-{run_id}", suffixes)
        findings = store.findings(run_id)
        if packs:
            findings = findings[findings["pack"].isin(packs)]
        results = export.dumps(export.results_document(store, run_id))
        signing = _attestation_page(run, sig, stem) if sig else None
        html = render_run(store, run_id, no_faces, packs, attestation=signing)
    written = _write(html, stem, formats, write_text_atomic,
                     lambda h, path: write_pdf(h, path, {attest.RESULTS_ATTACHMENT: results}))
    if sig:
        written.append(write_atomic(stem.with_name(stem.name + ".results.json"), results))
        bundle = attest.sign(attest.statement(run, findings, written, sig), sig)
        written.append(attest.write_bundle(bundle, stem.with_name(stem.name + ".intoto.json")))
    return written


def _attestation_page(run: dict, sig, stem: Path) -> dict:
    from audit.evidence import attest as attest_mod
    from audit.evidence.dataset import dataset_identity

    ident = dataset_identity(run)
    return {"dataset_fingerprint": ident["fingerprint"], "detector": ident["detector"],"signer": sig.name, "signed_at": sig.signed_at, "keyid": sig.keyid, "run_id": run["run_id"],
            "model_sha256": run["model_id"], "dataset_id": run["dataset_id"], "tool": audit.__version__,
            "bundle": stem.name + ".intoto.json", "pdf": stem.name + ".pdf",
            "attachment": attest_mod.RESULTS_ATTACHMENT}


def compare(run_refs: list[str], db: str | Path, out_dir: str | Path, formats: list[str] | None = None) -> list[Path]:
    """Side-by-side report of two or more stored runs."""
    from audit.report.pdf import write_pdf
    from audit.report.render import render_compare, write_text_atomic

    if len(run_refs) < 2:
        raise ConfigError("compare needs at least two runs")
    formats = formats or ["html", "pdf"]
    bad = [f for f in formats if f not in ("html", "pdf")]
    if bad:
        raise ConfigError(f"--format: unknown format(s) {bad}; use html and/or pdf")
    _require(db)
    out_dir = _out_folder(out_dir)
    with Store(db, read_only=True) as store:
        ids = [store.resolve_run(r) for r in run_refs]
        html = render_compare(store, ids)
    stem = _free_stem(out_dir / _comparison_name(ids), [f".{f}" for f in formats])
    return _write(html, stem, formats, write_text_atomic, write_pdf)


def _comparison_name(run_ids: list[str]) -> str:
    """``comparison-RUN1-RUN2...``; past ~200 characters (file-name limits) the first two ids, a count and
    a hash of all ids, so the name stays unique to the set of runs."""
    import hashlib

    name = "comparison-" + "-".join(run_ids)
    if len(name) <= 200:
        return name
    digest = hashlib.sha256("\n".join(run_ids).encode()).hexdigest()[:12]
    return f"comparison-{run_ids[0]}-{run_ids[1]}-and-{len(run_ids) - 2}-more-{digest}"


def _free_stem(stem: Path, suffixes: list[str]) -> Path:
    """``stem``, else ``stem-2``, ``stem-3``...: the first for which no output file exists yet.

    Reports are evidence an auditor may already have signed or sent: rendering again never replaces
    an earlier file; the new one gets the next number (and ``wrote ...`` names it)."""
    cand, n = stem, 1
    while any(cand.with_name(cand.name + s).exists() for s in suffixes):
        n += 1
        cand = stem.with_name(f"{stem.name}-{n}")
    return cand


def _write(html: str, stem: Path, formats: list[str], write_html, write_pdf) -> list[Path]:
    # with_name, not with_suffix: a model called 'vendor-fr-v3.2' must not lose the run id after its dot.
    written = []
    for fmt in ("html", "pdf"):
        if fmt not in formats:
            continue
        path = stem.with_name(f"{stem.name}.{fmt}")
        try:
            written.append(write_html(path, html) if fmt == "html" else write_pdf(html, path))
        except OSError as exc:
            path.with_name(path.name + ".partial").unlink(missing_ok=True)
            raise ConfigError(f"--out {path.parent}: cannot write {path.name}: {exc.strerror or exc}") from None
    return written


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "model"


# ---------------------------------------------------------------------------- evidence
def export_run(run_ref: str, db: str | Path, out_dir: str | Path, formats: list[str] | None = None) -> list[Path]:
    """Write the run's results as JSON (every metric, finding, config, seed, hash; see
    ``audit/evidence/results.schema.json``) and/or the metrics table as Parquet."""
    from audit.evidence import export

    formats = export.check_formats(formats or ["json"])
    _require(db)
    out_dir = _out_folder(out_dir)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        written = []
        if "json" in formats:
            data = export.dumps(export.results_document(store, run_id))
            stem = _free_stem(out_dir / f"results-{run_id}", [".json"])  # never replace a file already sent
            written.append(write_atomic(stem.with_name(stem.name + ".json"), data))
        if "parquet" in formats:
            stem = _free_stem(out_dir / f"metrics-{run_id}", [".parquet"])
            written.append(export.write_parquet(store.metrics(run_id), stem.with_name(stem.name + ".parquet")))
    return written


def attest_run(run_ref: str, db: str | Path, key: str | Path, out_dir: str | Path, signer: str | None = None,
               reports: list[Path] | None = None) -> list[Path]:
    """Sign an in-toto statement about a stored run: subjects are the model, the dataset, the results
    JSON (written beside the bundle) and each given report file. Returns [results JSON, bundle]."""
    from audit.evidence import attest, export

    sig = attest.Signer.load(key, signer)
    reports = [Path(r) for r in reports or []]
    for r in reports:
        if not r.is_file():
            raise ConfigError(f"--report {r}: no such file")
    _require(db)
    out_dir = _out_folder(out_dir)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        run = store.run(run_id)
        findings = store.findings(run_id)
        data = export.dumps(export.results_document(store, run_id))
    # A new attestation never replaces an earlier one: the pair gets the next free number.
    stem = _free_stem(out_dir / f"attestation-{run_id}", [".results.json", ".intoto.json"])
    results = write_atomic(stem.with_name(stem.name + ".results.json"), data)
    bundle = attest.sign(attest.statement(run, findings, [results] + reports, sig), sig)
    return [results, attest.write_bundle(bundle, stem.with_name(stem.name + ".intoto.json"))]


def verify_bundle(bundle: str | Path, reports: list[Path] | None = None, pubkey: str | Path | None = None):
    """Check an attestation bundle's signature and the SHA-256 of each report file against it."""
    from audit.evidence import verify

    return verify(bundle, [Path(r) for r in reports] if reports else None, pubkey)


def keygen(out: str | Path) -> tuple[Path, Path]:
    """Write an Ed25519 key pair: ``OUT`` (private, mode 0600) and ``OUT.pub``."""
    from audit.evidence import keygen as _keygen

    return _keygen(out)


def gate(run_ref: str, db: str | Path, packs: list[str] | None = None, fail_on: str = "fail",
         junit: str | Path | None = None):
    """Judge a stored run with rule packs (default: every shipped pack) without writing to the store;
    ``.exit_code`` is 1 when a finding at or above ``fail_on`` exists. Optionally writes JUnit XML."""
    from audit.evidence import gate as gate_mod
    from audit.rules.engine import evaluate, load_packs

    loaded = load_packs(packs)
    _require(db)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run_ref)
        run = store.run(run_id)
        metrics = store.metrics(run_id)
        probes_run = set(store.probes(run_id).query("status == 'completed'")["probe"])
    findings = pd.concat([evaluate(p, run_id, metrics, probes_run) for p in loaded], ignore_index=True)
    result = gate_mod.judge(findings, fail_on)
    if junit:
        gate_mod.write_junit(result, run, Path(junit))
    return result


def _out_folder(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: is a file; give a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create folder: {exc.strerror}") from None
    return out_dir


# ---------------------------------------------------------------------------- demo
@dataclass
class DemoResult:
    folder: Path
    db: Path
    runs: list[str]
    reports: list[Path]


def demo(out: str | Path = "faceaudit-demo", preset: str = "quick", seed: int = 0,
         progress: ProgressFn | None = None, models: list[Path] | None = None) -> DemoResult:
    """Audit every sample model with every available probe, apply every pack, write reports.

    The demo is a campaign over the sample models and the sample data (cells whose results are
    already in the store with the same settings are not run again).
    """
    from audit.config import make_config
    from audit.executors import Cell

    make_config(model=Path("-"), preset=preset, seed=seed)  # refuse a bad --preset/--seed before writing anything
    out = _out_folder(out)
    data, _, _ = sample_data(out / "sample-data")
    db = out / "faceaudit.duckdb"
    cells = []
    for model in models or sample_models():
        loaded = load_model(model)
        fr = loaded.profile.kind == "embedding"
        probes = [p for p in probe_mod.REGISTRY if fr or p not in ("identity", "inversion", "cloak")]
        # In the sample world other sample models play the attacker's FR model, the independent judge of
        # reconstructions and the attribute reader.
        others = [m for m in sample_models() if m != model and m.stem.startswith("fr-")] if fr else []
        attr = next((m for m in sample_models() if m.stem.startswith("attr-")), None) if fr else None
        config = make_config(model=model, data=str(data), probes=probes, preset=preset, seed=seed,
                             evaluator=others[0] if others else None,
                             attacker_model=others[1] if len(others) > 1 else None, attribute_model=attr,
                             surrogates=others[:1])
        cells.append(Cell(loaded.name, config))
    res = run_cells(cells, db, "local", progress=progress)
    failed = [c for c in res.cells if c["status"] == "failed"]
    if failed:
        raise FaceAuditError(f"demo: {failed[0]['cell']} failed: {failed[0]['error']}")
    run_ids = [c["run_id"] for c in res.cells]
    reports = []
    for run_id in run_ids:
        reports += build_report(run_id, db, out)
    if len(run_ids) >= 2:
        reports += compare(run_ids, db, out)
    return DemoResult(out, db, run_ids, reports)


# ---------------------------------------------------------------------------- campaigns
@dataclass
class CampaignResult:
    db: Path
    cells: list[dict]
    """Per cell: ``cell`` (label), ``status`` (completed / skipped / failed), ``run_id``, ``error``, ``hash``."""
    reports: list[Path] = field(default_factory=list)


def run_record(config: AuditConfig) -> dict:
    """The record a run of ``config`` stores (settings plus content hashes of its inputs)."""
    model, extra, surrogates, dataset = _load_inputs(config)
    return {**config.to_record(), "inputs": _inputs(model, dataset, extra, surrogates)}


def run_cells(cells: list, db: str | Path, executor: str = "local", address: str | None = None,
              progress: ProgressFn | None = None, packs: list[str] | None = None) -> CampaignResult:
    """Run campaign cells into one store with an executor (``local`` or ``ray``), skipping cells whose
    run is already stored as completed with the same settings (config hash); apply the packs to new runs."""
    from audit.executors import config_hash, get_executor
    from audit.store.transfer import import_run

    progress = progress or (lambda cell, fraction, message: None)
    db = Path(db)
    ex = get_executor(executor, address)
    done: dict[str, str] = {}
    if db.exists():
        with Store(db, read_only=True) as store:
            for r in store.runs().itertuples():
                if r.status == "completed":
                    done.setdefault(config_hash(store.run(r.run_id)["config"]), r.run_id)
    results, todo = [], []
    for cell in cells:
        try:
            cell.hash = config_hash(run_record(cell.config))
        except FaceAuditError as exc:
            results.append({"cell": cell.label, "status": "failed", "run_id": None, "error": str(exc), "hash": ""})
            progress(cell.label, 1.0, f"failed: {exc}")
            continue
        if cell.hash in done:
            results.append({"cell": cell.label, "status": "skipped", "run_id": done[cell.hash], "error": None,
                            "hash": cell.hash})
            progress(cell.label, 1.0, f"already completed as run {done[cell.hash]}")
        else:
            todo.append(cell)
    for res in ex.run(todo, str(db), progress):
        run_id, error = res.run_id, res.error
        if res.tables and run_id:
            with Store(db) as store:  # the head is the only writer
                import_run(store, res.tables)
        if run_id and not error:
            try:
                evaluate_rules(run_id, db, packs)
            except FaceAuditError as exc:
                error = f"rules: {exc}"
        results.append({"cell": res.cell.label, "status": "failed" if error else "completed", "run_id": run_id,
                        "error": error, "hash": res.cell.hash})
        progress(res.cell.label, 1.0, f"failed: {error}" if error else f"completed as run {run_id}")
    order = {c.label: i for i, c in enumerate(cells)}
    results.sort(key=lambda r: order.get(r["cell"], 0))
    return CampaignResult(db, results)


def campaign_cells(camp) -> list:
    """Expand a campaign into cells: every model x every dataset, probes by the model's kind."""
    from audit.config import make_config
    from audit.executors import Cell
    from audit.executors.campaign import FR_ONLY

    cells = []
    for model in camp.models:
        kind = load_model(model).profile.kind
        probes = camp.probes or [p for p in probe_mod.REGISTRY if kind == "embedding" or p not in FR_ONLY]
        for data in camp.datasets:
            optional = {"conditions": camp.conditions} if camp.conditions else {}
            config = make_config(model=model, data=data, probes=probes, attributes=camp.attributes,
                                 detector=camp.detector, min_face_confidence=camp.min_face_confidence,
                                 preset=camp.preset, seed=camp.seed, device=camp.device,
                                 attack_precision=camp.attack_precision, evaluator=camp.evaluator,
                                 attacker_model=camp.attacker_model, attribute_model=camp.attribute_model,
                                 surrogates=camp.surrogates, **optional)
            label = f"{Path(model).stem} x {Path(data).name if data != 'sample' else 'sample'}"
            cells.append(Cell(label, config))
    return cells


def run_campaign(path: str | Path, db: str | Path | None = None, executor: str = "local", address: str | None = None,
                 out: str | Path | None = None, formats: list[str] | None = None,
                 progress: ProgressFn | None = None) -> CampaignResult:
    """Run a campaign file into one store (default ``CAMPAIGN.duckdb`` beside it); with ``out``, write the
    comparison report covering every completed cell."""
    from audit.executors import load_campaign

    camp = load_campaign(path)
    for p in camp.packs or []:
        from audit.rules import load_pack

        load_pack(p)  # a broken pack is refused before any cell runs
    db = Path(db) if db else Path(path).with_suffix(".duckdb")
    res = run_cells(campaign_cells(camp), db, executor, address, progress, camp.packs)
    runs = [c["run_id"] for c in res.cells if c["status"] in ("completed", "skipped") and c["run_id"]]
    if out is not None and len(runs) >= 2:
        res.reports = compare(runs, db, out, formats)
    return res
