"""What a run writes besides the probes' own work: the resume check, the backend parity, what the run
used, failures to acquire, and any probe result as store rows."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

import audit
from audit.config import AuditConfig, computed_by_other, resume_conflicts
from audit.data import Dataset, Faces
from audit.data.budget import capped
from audit.devices import Compute, describe, stored_compute
from audit.errors import ConfigError, ModelError
from audit.models import LoadedModel, parity_check
from audit.probes import Artifact, ProbeResult
from audit.store import Store


def check_resume(run: dict, record: dict, compute: Compute, precision: str, threads: int) -> None:
    """Refuse to resume a run with settings that would store other results under its id, or on another device,
    backend or torch thread count than it started on (``compute``, ``precision`` and ``threads``: what this process
    would use)."""
    if run["status"] == "running":
        raise ConfigError(f"--resume {run['run_id']}: the run is still running in process {run['pid']} on "
                          f"{run['host']}; wait for it or stop it first")
    if made := computed_by_other(run):  # stored numbers that mean something else: one run would hold both meanings
        raise ConfigError(f"--resume {run['run_id']}: refusing, the run was started by faceaudit {made}, whose "
                          f"stored numbers mean something other than this faceaudit's ({audit.__version__}); start a "
                          "new run without --resume")
    started = stored_compute(run)
    now = compute.stored(precision, threads)
    if any(started[k] != now[k] for k in started if k in now):
        how = f"--device {started['device']}" + (f" --attack-threads {started['attack_threads']}"
                                                 if "attack_threads" in started else "")
        raise ConfigError(f"--resume {run['run_id']}: refusing, the run started on {describe(started)} and would "
                          f"go on with {describe(now)} here, mixing two backends' numbers in one run. Resume it where "
                          f"it can run as it started ({how}), or start a new run without --resume")
    stored = dict(run["config"])
    # Runs stored before input hashes were recorded still name their model and dataset by hash.
    stored.setdefault("inputs", {"model": run["model_id"], "dataset": run["dataset_id"]})
    diffs = resume_conflicts(stored, record)
    if diffs:
        raise ConfigError(f"--resume {run['run_id']}: refusing, the stored run used other settings: "
                          f"{'; '.join(diffs)}. Give the run's own settings, or start a new run without --resume")


def refuse_unchecked_torch(model: LoadedModel, checked: dict) -> None:
    """When the torch backend runs the embedding pass (CUDA without onnxruntime's CUDA provider), its parity with
    onnxruntime must have passed on the run's faces: otherwise every metric would rest on an unchecked conversion."""
    if model.compute.backend == "torch" and not checked.get("passed"):
        what = (f"max abs diff {checked['max_abs_diff']:.3g}, min cosine {checked['min_cosine']:.6f}"
                if checked.get("available") else checked.get("reason"))
        raise ModelError(f"{model.info.path.name}: --device {model.device}: the embedding pass would run through the "
                         f"torch backend, which does not agree with onnxruntime on this run's faces ({what}); install "
                         "onnxruntime-gpu (faceaudit[gpu]) or use --device cpu")


def parity(model: LoadedModel, faces: Faces) -> dict:
    """The torch backend checked against onnxruntime on a batch of the run's faces (stored with the run)."""
    backend = model.torch()
    if backend is None:
        return {"available": False, "reason": model.torch_error}
    batch = faces.load(np.arange(min(16, len(faces))))
    res = parity_check(model.ort, backend, batch)
    return {"available": True, **res.to_dict(), "conversion": backend.conversion}


def gradient_helpers(extra: dict, surrogates: list) -> list[tuple[str, LoadedModel]]:
    """The helper models an attack runs through the torch backend, with the option that gave each: the attacker's
    FR model (the decoder's identity loss) and the cloak surrogates."""
    return ([("--attacker-model", extra["attacker_model"])] if extra.get("attacker_model") is not None else []) \
        + [("--surrogate", s) for s in surrogates]


def helper_parity(helpers: list[tuple[str, LoadedModel]], faces: Faces) -> list[dict]:
    """Each helper's torch backend checked against its onnxruntime session on the run's faces, as :func:`parity`
    checks the audited model's, and withdrawn when it fails (a conversion that disagrees with its model makes a
    weaker identity loss or surrogate, and so a weaker attack than the attacker holding that model has)."""
    checks = []
    for option, helper in helpers:
        try:
            checked = parity(helper, faces)
        except Exception as exc:  # e.g. a graph that fixes its batch at 1: the helper is not used, the run goes on
            why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            checked = {"available": False, "reason": f"the torch backend failed on the run's faces: {why}"}
        helper.withdraw_torch(checked)
        checks.append({"option": option, "model": helper.name, **checked})
    return checks


def withdraw_failed(model: LoadedModel, helpers: list[tuple[str, LoadedModel]], checked: dict) -> None:
    """A resumed run's stored checks (:func:`parity`, :func:`helper_parity`) hold for its rest."""
    model.withdraw_torch(checked)
    stored = {(c.get("option"), c.get("model")): c for c in checked.get("helpers", [])}
    for option, helper in helpers:
        helper.withdraw_torch(stored.get((option, helper.name)) or {})


def used(dataset: Dataset, faces_all: Faces, chosen: Faces, faces: Faces, config: AuditConfig, issues: list):
    """What the run actually used, for the report: images and persons after unusable images and the
    preset's cap, next to the manifest's totals, and whether the data are the synthetic sample world.
    (Files outside the budget are screened without being decoded, so one that does not decode is only
    found when a run uses it.) ``quality`` lists the data-quality records (row, problem) this run found
    (``issues``), which its report and export show (:meth:`audit.store.Store.run_data_quality`)."""
    subjects = dataset.manifest["subject"].to_numpy()
    per_person = config.setting("max_images_per_subject")
    capped_persons, capped_images = capped(subjects[faces_all.rows], per_person)
    return Artifact.json("dataset", "used.json", {
        "max_images_per_subject": per_person, "capped_persons": capped_persons, "capped_images": capped_images,
        "manifest_images": int(len(dataset.manifest)), "manifest_persons": int(dataset.n_subjects),
        "readable_images": int(len(faces_all) - (len(chosen) - len(faces))), "images": int(len(faces)),
        "persons": int(len(np.unique(subjects[faces.rows]))), "max_images": int(config.setting("max_images")),
        "max_subjects": config.setting("max_subjects"),
        "synthetic": (Path(dataset.root) / "recipe.json").is_file(),
        "attributes": list(dataset.attributes),
        "same_landmarks": _same_landmarks(dataset, faces),
        "quality": sorted({(int(i.row), i.problem) for i in issues})})


def _same_landmarks(dataset: Dataset, faces: Faces) -> bool:
    """Whether every face the run used has the same manifest landmarks (a folder aligned beforehand, such as
    ``faceaudit prepare`` writes): masks are then drawn identically for everyone, whatever the face's shape."""
    from audit.data.manifest import LANDMARK_COLUMNS

    if not dataset.has_landmarks or dataset.acquisition_key or not len(faces):
        return False
    lm = dataset.manifest[LANDMARK_COLUMNS].to_numpy(float)[faces.rows]
    return bool(np.isfinite(lm).all() and np.allclose(lm, lm[0], atol=1e-3))


def write_acquisition(store: Store, run_id: str, dataset: Dataset, config: AuditConfig) -> None:
    """Failure to acquire, when a detector found the faces: ``fta_rate`` overall and per group (probe
    ``acquisition``), the detector and per-image outcome, and a thumbnail grid of the photos that failed."""
    from audit.intake.acquire import failure_grid, fta_metrics

    acq = dataset.acquisition()
    if acq is None:
        return
    started = datetime.now().replace(microsecond=0)
    metrics = fta_metrics(acq, dataset.manifest, dataset.attributes, config.setting("bootstrap"), config.seed)
    arts = [Artifact.json("acquisition", "acquisition.json", acq.summary())]
    grid = failure_grid([Path(p) for p in dataset.manifest["_path"]], acq.issues, acq.confidence,
                        dataset.manifest["subject"].astype(str).to_numpy())
    if grid is not None:
        arts.append(Artifact("acquisition", "failures.png", "image/png", grid[0], {"tiles": grid[1]}))
    write_result(store, run_id, ProbeResult(metrics=metrics, artifacts=arts))
    store.record_probe(run_id, "acquisition", "completed", started, acq.seconds,
                       f"{acq.detected} image(s) detected, {acq.cache_hits} from the landmark cache")


def write_result(store: Store, run_id: str, result: ProbeResult) -> None:
    """A probe's metrics and artifacts as rows of the store (the caller holds the transaction)."""
    if result.metrics:
        df = pd.DataFrame([asdict(m) for m in result.metrics])
        df.insert(0, "run_id", run_id)
        df["n"] = df["n"].astype("int64")
        for c in ("value", "ci_low", "ci_high"):
            # An infinite value stays infinite (a disparity ratio where one group has no errors and another has some:
            # the rules judge it as the worst case); only what is not a number becomes NULL.
            df[c] = pd.to_numeric(df[c], errors="coerce")
        store.write("metrics", df)
    if result.artifacts:
        store.write("artifacts", pd.DataFrame([{
            "run_id": run_id, "probe": a.probe, "name": a.name, "mime": a.mime, "data": a.data,
            "meta": json.dumps(a.meta)} for a in result.artifacts]))
