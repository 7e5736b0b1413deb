"""Cells run into one store: a campaign file expanded into cells, the demo (a campaign over the sample
models), and the loop that skips cells already stored, hands the rest to an executor, writes what
distributed workers return, and applies the rule packs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import audit
from audit import probes as probe_mod
from audit.config import computed_by_other, make_config
from audit.errors import ConfigError, FaceAuditError
from audit.executors.base import Cell, CellProgress, Executor, config_hash
from audit.executors.campaign import SAMPLE_SETS, Campaign, load_campaign
from audit.models import load as load_model
from audit.paths import out_folder
from audit.protocol import load_protocol
from audit.resources import protocols_dir
from audit.report.build import build_report, compare
from audit.rules.engine import load_packs
from audit.rules.apply import evaluate_rules
from audit.run import load_inputs, sample_data, sample_models
from audit.store import Store
from audit.store.transfer import import_run


def get_executor(name: str, address: str | None = None) -> Executor:
    """The executor ``--executor`` names: ``local`` (this process) or ``ray``."""
    if name == "local":
        from audit.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "ray":
        from audit.executors.ray_executor import RayExecutor

        return RayExecutor(address)
    raise ConfigError(f"--executor: unknown executor {name!r}; use local or ray")


@dataclass
class CampaignResult:
    """What a campaign (or the demo's cells) did, cell by cell."""

    db: Path
    cells: list[dict]
    """Per cell: ``cell`` (label), ``status`` (completed / skipped / failed), ``run_id``, ``error``, ``hash``."""
    reports: list[Path] = field(default_factory=list)


def run_cells(cells: list[Cell], db: str | Path, executor: str = "local", address: str | None = None,
              progress: CellProgress | None = None, packs: list[str] | None = None) -> CampaignResult:
    """Run campaign cells into one store with an executor (``local`` or ``ray``), skipping cells whose
    run is already stored as completed with the same settings (config hash); apply the packs to new runs."""
    progress = progress or (lambda cell, fraction, message: None)
    db = Path(db)
    ex = get_executor(executor, address)
    done: dict[str, str] = {}
    if db.exists():
        with Store(db, read_only=True) as store:
            for r in store.runs().itertuples():
                run = store.run(r.run_id) if r.status == "completed" else None
                # A run another minor version made holds numbers that mean something else: the cell runs again.
                if run is not None and not computed_by_other(run):
                    done.setdefault(config_hash(run["config"]), r.run_id)
    results = []
    queued: dict[str, str] = {}  # config hash -> label of the cell of this campaign that runs it

    def todo():
        """The cells to run, each loaded and hashed as the executor reaches it: an in-process executor gets the
        loaded inputs with the cell, so a cell's models are loaded and its dataset hashed once, and only one
        cell's inputs are held at a time."""
        for cell in cells:
            try:
                inputs = load_inputs(cell.config)
                cell.hash = config_hash(inputs.record(cell.config))
            except FaceAuditError as exc:
                results.append({"cell": cell.label, "status": "failed", "run_id": None, "error": str(exc),
                                "hash": ""})
                progress(cell.label, 1.0, f"failed: {exc}")
                continue
            if cell.hash in done:
                results.append(_skipped(cell, done[cell.hash], db, packs, progress))
                continue
            if cell.hash in queued:  # another spelling or a copy of the same model and dataset: one run
                results.append({"cell": cell.label, "status": "skipped", "run_id": None, "hash": cell.hash,
                                "error": None, "same_as": queued[cell.hash]})
                progress(cell.label, 1.0, f"skipped: the same model, dataset and settings as {queued[cell.hash]}")
                continue
            queued[cell.hash] = cell.label
            cell.inputs = inputs if ex.in_process else None
            yield cell

    for res in ex.run(todo(), str(db), progress):
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
    by_label = {r["cell"]: r for r in results}
    for r in results:  # a duplicate cell shares the run of the cell it repeats
        if r.get("same_as") and by_label.get(r["same_as"], {}).get("status") in ("completed", "skipped"):
            r["run_id"] = by_label[r["same_as"]]["run_id"]
    return CampaignResult(db, results)


def _skipped(cell: Cell, run_id: str, db: Path, packs: list[str] | None, progress: CellProgress) -> dict:
    """A cell already stored as a completed run. Its findings must come from the packs this campaign names (default:
    every shipped pack, or the run's protocol's): every such pack the run has no findings of (a pack added to the
    campaign since, an edited pack file, findings another faceaudit judged, or none at all: the process was killed
    between the probes and the packs) is applied now."""
    from audit.rules.apply import run_packs

    with Store(db, read_only=True) as store:
        have = {(f.pack, f.pack_hash) for f in store.findings(run_id).itertuples() if f.judged_by == audit.__version__}
        run = store.run(run_id)
    error, note = None, ""
    try:
        missing = [p for p in run_packs(run, packs) if (p.pack, p.sha256) not in have]
        if missing:
            evaluate_rules(run_id, db, [p.source for p in missing])
            note = f"; rule pack(s) {', '.join(p.pack for p in missing)} applied now"
    except FaceAuditError as exc:
        error = f"rules: {exc}"
    progress(cell.label, 1.0, f"failed: {error}" if error else f"already completed as run {run_id}{note}")
    return {"cell": cell.label, "status": "failed" if error else "skipped", "run_id": run_id, "error": error,
            "hash": cell.hash}


def campaign_cells(camp: Campaign) -> list[Cell]:
    """Expand a campaign into cells: every model x every dataset, probes by the model's kind."""
    cells = []
    names = _labels(camp.models, camp.datasets)
    for model in camp.models:
        try:
            kind = load_model(model).profile.kind
        except FaceAuditError:  # a broken model is that model's cells failing (when they load), not the campaign's
            kind = "embedding"
        # Under a protocol, its probes that this model's kind supports; else the file's (a cell asked for a probe
        # its model cannot run fails with the reason) or every probe the kind supports.
        probes = _supported(camp.pinned["probes"], kind) if camp.pinned else camp.probes or probe_mod.supported(kind)
        for data in camp.datasets:
            optional = {"conditions": camp.conditions} if camp.conditions else {}
            fields = dict(model=model, data=data, attributes=camp.attributes, detector=camp.detector,
                          min_face_confidence=camp.min_face_confidence, preset=camp.preset, seed=camp.seed,
                          device=camp.device, attack_precision=camp.attack_precision,
                          attack_threads=camp.attack_threads, evaluator=camp.evaluator,
                          attacker_model=camp.attacker_model, attribute_model=camp.attribute_model,
                          surrogates=camp.surrogates, reference_models=camp.reference_models, **optional)
            config = make_config(**{**fields, **camp.pinned, "probes": probes})
            cells.append(Cell(f"{names[model]} x {names[data]}", config))
    return cells


def _labels(models: list[str], datasets: list[str]) -> dict[str, str]:
    """How each model and dataset is named in campaign output: the file or folder name (a model's without its
    extension), with as many parent folders as it takes to tell apart two entries of the same name (``a/vendor``
    and ``b/vendor``); models that differ only in their extension keep it (``vendor.onnx``, ``vendor.ort``)."""
    def label(entry: str, depth: int, stem: bool) -> str:
        if entry in SAMPLE_SETS:
            return entry
        p = Path(entry)
        return "/".join([*(q.name for q in list(p.parents)[:depth][::-1]), p.stem if stem else p.name])

    names = {}
    for group, stems in ((models, (True, False)), (datasets, (False,))):
        deepest = max((len(Path(e).parents) for e in group), default=0)
        for stem in stems:
            depth = next((d for d in range(deepest + 1)
                          if len({label(e, d, stem) for e in group}) == len(set(group))), None)
            if depth is not None:
                break
        names.update({e: label(e, depth or 0, stem) for e in group})
    return names


def run_campaign(path: str | Path, db: str | Path | None = None, executor: str = "local", address: str | None = None,
                 out: str | Path | None = None, formats: list[str] | None = None,
                 progress: CellProgress | None = None) -> CampaignResult:
    """Run a campaign file into one store (default ``CAMPAIGN.duckdb`` beside it); with ``out``, write the
    comparison report covering every completed cell."""
    camp = load_campaign(path)
    if camp.packs:
        load_packs(camp.packs)  # a broken pack, or two with one id, is refused before any cell runs
    if out is not None:  # the report's options too: found wrong after every cell had run, they lost the output
        bad = [f for f in formats or [] if f not in ("html", "pdf")]
        if bad:
            raise ConfigError(f"--format: unknown format(s) {bad}; use html and/or pdf")
        out_folder(out, create=False)  # made when the comparison is written, not before the cells run
    db = Path(db) if db else Path(path).with_suffix(".duckdb")
    res = run_cells(campaign_cells(camp), db, executor, address, progress, camp.packs)
    # A skipped cell (the same model under another file name) carries the run it repeats: each run once.
    runs = list(dict.fromkeys(c["run_id"] for c in res.cells if c["status"] in ("completed", "skipped") and c["run_id"]))
    if out is not None and len(runs) >= 2:
        res.reports = compare(runs, db, out, formats)
    return res


def _supported(probes: list[str], kind: str) -> list[str]:
    """``probes`` less those a model of profile ``kind`` cannot run (:func:`audit.probes.supported`); a name that is
    no probe at all is refused (:func:`load_campaign` names the protocol file), never dropped as not applicable."""
    probe_mod.load_plugins()
    probe_mod.require(probes)
    ok = probe_mod.supported(kind, opt_in=True)
    return [p for p in probes if p in ok]


def _under_protocol(name: str, preset: str, seed: int) -> dict:
    """The config fields of the shipped protocol ``name`` when the demo runs at its own preset and seed (its cells
    are then comparable by construction); another preset or seed is not that protocol: only those two fields."""
    proto = load_protocol(protocols_dir() / f"{name}.yaml")
    return proto.fields() if (preset, seed) == (proto.preset, proto.seed) else {"preset": preset, "seed": seed}


def demo_cells(data: Path, preset: str, seed: int, models: list[Path] | None = None,
               membership_data: Path | None = None) -> list[Cell]:
    """The demo's cells: every sample model (or ``models``) on the sample data with every probe its kind supports,
    under the shipped sample-world protocol; with ``membership_data`` (the planted membership set) also every
    recognition model on it with the membership probe, under the shipped sample-membership protocol.

    At a protocol's own preset and seed the cells run under it (the comparison is then paired by construction);
    another preset or seed is not that protocol, so they run without one."""
    settings = _under_protocol("sample-world", preset, seed)
    cells, recognition = [], []
    for model in models or sample_models():
        loaded = load_model(model)
        fr = loaded.profile.kind == "embedding"
        probes = _supported(settings.get("probes", probe_mod.supported(loaded.profile.kind)), loaded.profile.kind)
        # In the sample world other sample models play the attacker's FR model, the independent judge of
        # reconstructions and the attribute reader.
        others = [m for m in sample_models() if m != model and m.stem.startswith("fr-")] if fr else []
        attr = next((m for m in sample_models() if m.stem.startswith("attr-")), None) if fr else None
        config = make_config(model=model, data=str(data), **{**settings, "probes": probes},
                             evaluator=others[0] if others else None,
                             attacker_model=others[1] if len(others) > 1 else None, attribute_model=attr,
                             surrogates=others[:1])
        cells.append(Cell(loaded.name, config))
        if _sample_recognition(model):  # the planted members are the sample models' training persons, no one else's
            recognition.append((loaded.name, model))
    if membership_data is not None:
        # Every sample FR model saw the members in training (sample_data/README.md): none can be a reference model.
        member = {"probes": ["membership"], "conditions": ["clean"], **_under_protocol("sample-membership", preset,
                                                                                       seed)}
        cells += [Cell(f"{name} (membership)", make_config(model=model, data=str(membership_data), **member))
                  for name, model in recognition]
    return cells


def _sample_recognition(model: Path) -> bool:
    """Whether ``model`` is one of the shipped sample recognition models (``fr-*``, trained on the planted membership
    set's members)."""
    return Path(model).stem.startswith("fr-") and any(Path(model).resolve() == m.resolve() for m in sample_models())


def _membership_needed(models: list[Path] | None) -> bool:
    """Whether the demo has a sample recognition model to audit on the planted membership set."""
    return any(map(_sample_recognition, models or sample_models()))


@dataclass
class DemoResult:
    """The demo's folder, its store, the runs and the reports written."""

    folder: Path
    db: Path
    runs: list[str]
    reports: list[Path]


def demo(out: str | Path = "faceaudit-demo", preset: str = "quick", seed: int = 0,
         progress: CellProgress | None = None, models: list[Path] | None = None) -> DemoResult:
    """Audit every sample model with every available probe, and every sample recognition model with the
    membership probe on the planted membership set; apply every pack, write reports and one comparison per set.

    The demo is a campaign over the sample models and the two sample sets (cells whose results are
    already in the store with the same settings are not run again).
    """
    make_config(model=Path("-"), preset=preset, seed=seed)  # refuse a bad --preset/--seed before writing anything
    out = out_folder(out)
    data, _, _ = sample_data(out / "sample-data")
    members = sample_data(out / "sample-membership", membership=True)[0] if _membership_needed(models) else None
    db = out / "faceaudit.duckdb"
    cells = demo_cells(data, preset, seed, models, members)
    res = run_cells(cells, db, "local", progress=progress)
    failed = [c for c in res.cells if c["status"] == "failed"]
    if failed:
        raise FaceAuditError(f"demo: {failed[0]['cell']} failed: {failed[0]['error']}")
    run_ids = [c["run_id"] for c in res.cells]
    reports = []
    for run_id in run_ids:
        reports += build_report(run_id, db, out)
    # One comparison per dataset: the sample world's runs, and the membership runs on the planted set.
    on_members = {c.label for c in cells if members is not None and c.config.data == str(members)}
    membership = [c["run_id"] for c in res.cells if c["cell"] in on_members]
    for group in ([r for r in run_ids if r not in membership], membership):
        if len(group) >= 2:
            reports += compare(group, db, out)
    return DemoResult(out, db, run_ids, reports)
