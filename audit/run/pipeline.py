"""One run, start to end: check everything that can fail before writing, check the profile against the
data, embed every condition once, run each probe and commit its results, and end the run completed,
cancelled or failed (a later ``--resume`` finishes it)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from audit import conditions as cond_mod
from audit import probes as probe_mod
from audit.config import AuditConfig
from audit.data import Dataset
from audit.data.budget import cap_per_person
from audit.data.loaders import CHUNK
from audit.errors import ConfigError, FaceAuditError
from audit.models import LoadedModel
from audit.probes import Artifact, ProbeContext, ProbeResult, conditions_read
from audit.protocol import check_helpers
from audit.run.embeddings import Embeddings, examples
from audit.run.inputs import Inputs, _subset, content_hashes, environment, load_inputs
from audit.run.results import (check_resume, gradient_helpers, helper_parity, parity, refuse_unchecked_torch, used,
                               withdraw_failed, write_acquisition, write_result)
from audit.store import Store
from audit.threads import torch_threads

ProgressFn = Callable[[str, float, str], None]
"""progress(probe, fraction 0..1, message)."""


class Cancelled(FaceAuditError):
    """The run was cancelled by the user."""


def validate_config(config: AuditConfig, inputs: Inputs | None = None) -> list:
    """Every check that can fail before anything is written; returns the probe objects. ``inputs``: the run's files
    already loaded (:func:`audit.run.inputs.load_inputs`); by default they are loaded here."""
    inputs = load_inputs(config) if inputs is None else inputs
    model, extra, _, dataset = inputs
    attribute_model = extra.get("attribute_model")
    probe_mod.load_plugins()
    if not config.probes:
        raise ConfigError("no probes selected")
    probes = [probe_mod.get(p) for p in config.probes]
    for c in config.conditions:
        cond_mod.parse(c)
    unknown = [a for a in config.attributes or [] if a not in dataset.attributes]
    if unknown:  # whichever probes run: an attribute that is asked for and silently ignored misleads the report
        where = f"protocol {config.protocol['name']!r}: field 'attributes'" if config.protocol else "--attributes"
        raise ConfigError(f"{where}: {', '.join(map(repr, unknown))} not among the attributes of {dataset.source} "
                          f"(available: {', '.join(dataset.attributes) or 'none'})")
    # The audited model's heads are scored on the attributes attacked; the inversion's attribute model on every
    # attribute of the dataset it has a head for.
    for loaded, profile, attrs in ((model, config.profile, config.attributes or dataset.attributes),
                                   (attribute_model, None, list(dataset.manifest.columns))):
        if loaded is not None:
            check_head_labels(loaded, profile, dataset, attrs)
    for p in probes:
        p.check(config, dataset, model)
    if config.protocol:
        check_protocol_dataset(config.protocol, dataset)
        check_helpers(config.protocol, content_hashes(inputs))
    return probes


def check_memory(probes: list, subjects, config: AuditConfig, available: int | None = None) -> None:
    """Refuse, before anything is decoded or written, a run whose probe needs more memory than the machine has
    (``available`` bytes; by default :func:`audit.devices.available_memory`): a probe that says what it needs on
    these faces (an optional ``memory(subjects) -> (bytes, what)``, the identity probe's quadratic score matrix)
    would otherwise end the run hours later, killed for memory. Says how many images would fit."""
    from audit.devices import available_memory

    available = available_memory() if available is None else available
    if available is None:
        return
    for p in probes:
        need = getattr(p, "memory", None)
        if not callable(need):
            continue
        size, what = need(subjects)
        if size <= available:
            continue
        fits = len(subjects) * (available / size) ** 0.5  # comparisons grow as the square of the images
        fits = int(float(f"{fits:.2g}"))
        raise ConfigError(f"{p.name}: {what} need about {size / 2**30:.1f} GiB of memory and this machine has "
                          f"{available / 2**30:.1f} GiB available; audit fewer images (about {fits:,} fit: a smaller "
                          f"--preset than {config.preset!r}, or max_images: {fits} in a protocol's overrides) or use a "
                          "machine with more memory")


def check_head_labels(model: LoadedModel, profile: Path | None, dataset: Dataset, attributes: list[str]) -> None:
    """An attributes model's categorical heads must name every value their attribute (one of ``attributes``) takes
    in the dataset (``Female`` is not ``female``): rows whose value no label names would be dropped from its
    scores silently."""
    from audit.models.profile import profile_path

    for i, head in enumerate(model.profile.heads):
        if head.attribute not in attributes or head.attribute not in dataset.manifest.columns:
            continue
        missing = head.uncovered(dataset.manifest[head.attribute])
        if missing:
            where = profile or (profile_path(Path(model.info.path)) if model.profile_from_file else
                                f"{model.info.path} (inferred profile)")
            shown = ", ".join(map(repr, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ConfigError(f"{where}: field 'heads.{i}.labels': {head.labels} name none of the values {shown} of "
                              f"'{head.attribute}' in {dataset.source}; give the labels as the dataset spells them")


def check_protocol_dataset(record: dict, dataset: Dataset) -> None:
    """The tool version and the dataset a run's protocol pins (by fingerprint, or the sample world's recipe)."""
    import audit
    from audit import protocol
    from audit.synth import recorded_recipe

    protocol.check_tool(record, audit.__version__)
    pins_recipe = bool((record.get("dataset") or {}).get("recipe"))
    if pins_recipe and dataset.root:
        # The recipe's check covers its own manifest and images: another manifest beside them (a subset of the
        # persons) or a labels file joined to them is other data under the same recipe.json.
        own = Path(dataset.root) / "manifest.csv"
        if Path(dataset.source).resolve() != own.resolve():
            raise ConfigError(f"protocol {record['name']!r} pins a synthetic recipe, audited as written: give --data "
                              f"{dataset.root} (its manifest.csv, no --labels); this run reads {dataset.source}")
    recipe = recorded_recipe(Path(dataset.root)) if dataset.root and pins_recipe else None
    protocol.check_dataset(record, dataset.fingerprint, recipe)


def _set_up(db: str | Path, resume: str) -> bool:
    """Whether the run being resumed stored its run-level results (the preprocessing check, what it used, the
    examples, failure to acquire): one interrupted in its embedding pass did not, and its resume writes them."""
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(resume)
        stored = store.artifacts(run_id, "models")
    return bool((stored["name"] == "preprocessing.json").any())


def check_config(config: AuditConfig, packs: list[str] | None = None) -> None:
    """Everything :func:`run_audit` would refuse, checked without writing anything (for the TUI)."""
    from audit.rules import load_pack

    validate_config(config)  # the same loading and helper checks as run_audit
    for p in packs or []:
        load_pack(p)


def run_audit(config: AuditConfig, db: str | Path = "faceaudit.duckdb", progress: ProgressFn | None = None,
              cancel: threading.Event | None = None, resume: str | None = None, inputs: Inputs | None = None) -> str:
    """Run the configured probes and store every number; returns the run id.

    Each probe's metrics and artifacts are committed in one transaction. Ctrl-C or
    ``cancel`` ends the run ``cancelled`` with finished probes kept; an error ends it
    ``failed``. ``resume`` finishes an earlier (interrupted/failed/cancelled) run, skipping
    the probes it completed. ``inputs`` are the run's files already loaded (:func:`load_inputs`), for a
    caller that has loaded them to hash them (a campaign); by default they are loaded here.
    """
    progress = progress or (lambda probe, fraction, message: None)
    from audit.store.db import preflight

    preflight(db)
    inputs = load_inputs(config) if inputs is None else inputs
    model, extra, surrogates, dataset = inputs
    probes = validate_config(config, inputs)
    # Streaming: the budget is taken on the manifest (files only screened, nothing decoded); the chosen faces are
    # then decoded once to find files that do not decode, keeping no pixels (each step decodes what it uses).
    faces_all = dataset.faces(tuple(model.profile.input.size), verify=False)
    chosen = _subset(cap_per_person(faces_all, dataset, config.setting("max_images_per_subject"), config.seed), dataset,
                     config.setting("max_images"), config.setting("max_subjects"), config.seed)
    if not resume:
        check_memory(probes, dataset.manifest["subject"].to_numpy()[chosen.rows], config)
    faces = dataset.usable(chosen.verified())
    record = inputs.record(config)
    check = None
    setup = not resume or not _set_up(db, resume)
    if setup:
        from audit.models.calibrate import run_check

        progress("preprocessing", 0.0, "checking the profile against the data")
        check = run_check(model, dataset, faces, config.seed)
        if check.better and not config.accept_profile:
            raise ConfigError(check.message(model.name))  # before anything is written
        progress("preprocessing", 1.0, "done")
    checked = None
    # The torch backend runs the embedding pass only once its parity with onnxruntime has been shown on this run's
    # faces (CUDA without onnxruntime's CUDA provider), and the gradient attacks (white-box inversion and cloaks) only
    # through a backend that passed it, so then the check runs whatever --no-parity says.
    gradients = any(probe_mod.white_box(p) for p in probes)
    if not resume and (config.parity or model.compute.backend == "torch" or gradients):
        progress("parity", 0.0, "checking torch backend against onnxruntime")
        checked = parity(model, faces)
        progress("parity", 1.0, "done")
        refuse_unchecked_torch(model, checked)  # before anything is written
        model.withdraw_torch(checked)
        if gradients:
            checked["helpers"] = helper_parity(gradient_helpers(extra, surrogates), faces)
    with Store(db) as store:
        if resume:  # checked before anything is written: a refused resume leaves the store as it was
            run_id = store.resolve_run(resume)
            stored = store.run(run_id)
            check_resume(stored, record, model.compute, config.precision(), config.threads())
            withdraw_failed(model, gradient_helpers(extra, surrogates), stored.get("parity") or {})
        store.upsert_model(model.info, model.profile)
        issues = faces.issues + dataset.label_issues
        store.upsert_dataset(dataset, issues)
        if resume:
            done = set(store.probes(run_id).query("status == 'completed'")["probe"])
            with store.transaction():
                if any(p.name not in done for p in probes):
                    # Verdicts judged on the unfinished run would outlive the probes it is about to add (and be
                    # signed): a pack applied to it before must be applied again to the finished run.
                    store.delete_findings(run_id)
                store.set_run_status(run_id, "running")
        else:
            run_id = store.create_run(model.info.sha256, dataset.dataset_id, record, config.seed,
                                      environment(model.compute, config.precision(), config.threads()))
            done = set()
        try:
            if checked is not None:
                store.set_parity(run_id, checked)
            embed = Embeddings(store, model, dataset, faces, config)

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
            embed.prepare([c for c in config.conditions if any(c in conditions_read(p, config) for p in todo)],
                          lambda fraction: embedding(fraction, "decoding, transforming and embedding the faces in "
                                                               f"chunks of {CHUNK}"))
            seconds = time.perf_counter() - t0
            progress("embeddings", 1.0, "done")
            if setup:  # a run interrupted in its embedding pass stores them when it is resumed
                with store.transaction():
                    write_result(store, run_id, ProbeResult(
                        artifacts=[examples(embed, config), used(dataset, faces_all, chosen, faces, config, issues),
                                   Artifact.json("conditions", "embeddings.json", {
                                       "seconds": round(seconds, 3), "chunk": CHUNK, "images": len(faces),
                                       "conditions": config.conditions}),
                                   Artifact.json("models", "preprocessing.json",
                                                           check.to_dict() | {"accepted": config.accept_profile})]))
                    write_acquisition(store, run_id, dataset, config)
            # torch's threads set for every probe (the inversion decoder's sums depend on them; a Ray worker or an
            # OMP_NUM_THREADS=1 environment gave it one thread where the machine gave two: a review of reproducibility)
            with torch_threads(config.threads()):
                for probe in probes:
                    if probe.name in done:
                        progress(probe.name, 1.0, "already completed (resumed)")
                        continue
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("cancelled")

                    report = reporter(probe.name)
                    ctx = ProbeContext(model=model, dataset=dataset, faces=faces, config=config,
                                       embeddings=embed.embeddings, condition_images=embed.condition_images,
                                       progress=report, surrogates=surrogates, **extra)
                    started, t0 = datetime.now().replace(microsecond=0), time.perf_counter()
                    report(0.0, "starting")
                    result = probe.run(ctx)
                    with store.transaction():
                        write_result(store, run_id, result)
                        store.record_probe(run_id, probe.name, "completed", started, time.perf_counter() - t0,
                                           "\n".join(result.notes))  # one note a line: the report bullets each
            store.set_run_status(run_id, "completed")
        except (KeyboardInterrupt, Cancelled):
            store.set_run_status(run_id, "cancelled", "cancelled by the user")
            raise Cancelled(f"run {run_id} cancelled; finished probes are kept (resume with --resume {run_id})") \
                from None
        except Exception as exc:
            store.set_run_status(run_id, "failed", f"{type(exc).__name__}: {exc}")
            raise
    return run_id
