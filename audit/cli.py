"""``faceaudit`` command line: parses options, calls :mod:`audit.api`, prints the result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from audit import api
from audit import cli_output as show  # not 'out': several commands take an --out parameter
from audit.cli_options import (DEFAULT_DB, AttackPrecision, Data, Db, Detector, Device, Formats, MinFaceConfidence,
                               NoFaces, Packs, Preset, Seed, csv_list)
from audit.config import QUERY_FIRST_STEP
from audit.errors import ConfigError, FaceAuditError, FaceAuditWarning

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Audit face-recognition and face-attribute ONNX models for privacy risk.")
runs_app = typer.Typer(help="List and show stored runs.", no_args_is_help=True)
rules_app = typer.Typer(help="List rule packs and check a pack file.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(rules_app, name="rules")
console = Console()
err_console = Console(stderr=True)
STATE = {"debug": False}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    STATE["debug"] = debug


@app.command()
def inspect(model: Path, write_profile: bool = typer.Option(False, "--write-profile",
                                                            help="Write MODEL.profile.yaml to confirm and edit."),
            profile: Optional[Path] = typer.Option(None, help="Profile YAML to check against the graph."),
            as_json: bool = typer.Option(False, "--json", help="Print the facts and the profile as JSON."),
            data: Optional[str] = typer.Option(None, "--data", help="Dataset for --calibrate ('sample' = embedded)."),
            calibrate: bool = typer.Option(False, "--calibrate", help="Rank colour orders and normalisations by how "
                                           "well the model does its job on --data."),
            detector: Detector = "auto", min_face_confidence: MinFaceConfidence = 0.9) -> None:
    """Validate an ONNX model and show its facts and (inferred) profile."""
    if data is not None and not calibrate:
        raise ConfigError("--data: used only by --calibrate (the preprocessing check); add --calibrate, or leave "
                          "--data out")
    res = api.inspect_model(model, write_profile, profile, data, calibrate, detector=detector,
                            min_face_confidence=min_face_confidence)
    info, prof = res.info, res.profile
    if as_json:
        show.print_json({"model": info.to_dict(), "profile": prof.model_dump(mode="json"),
                        "profile_from_file": res.profile_from_file,
                        "preprocessing_check": res.check.to_dict() if res.check else None,
                        "written": str(res.written) if res.written else None})
        return
    rows = [("path", str(info.path)), ("sha256", info.sha256), ("size", f"{info.size_bytes} bytes"),
            ("opset", info.opset), ("ir_version", info.ir_version), ("producer", info.producer or "(none)")]
    rows += [("input", f"{i.name} {list(i.shape)} {i.dtype}") for i in info.inputs]
    rows += [("output", f"{o.name} {list(o.shape)} {o.dtype}") for o in info.outputs]
    show.kv(console, info.path.name, rows)
    guessed = set(prof.guessed)

    def mark(value, field: str):
        return show.text(value) + (show.text(" (guess)", "yellow") if field in guessed else show.text(""))

    rows = [("kind", mark(prof.kind, "kind")),
            ("input size", mark(f"{prof.input.size[0]}x{prof.input.size[1]}", "input.size")),
            ("layout", mark(prof.input.layout, "input.layout")), ("colour order", mark(prof.input.color, "input.color")),
            ("normalisation", mark(f"(x - {list(prof.input.mean)}) / {list(prof.input.std)}", "input.mean"))]
    if prof.kind == "embedding":
        rows.append(("embedding output", str(prof.embedding_output)))
    rows += [(f"head {h.attribute}", mark(f"{h.output}: {h.type} {h.labels or ''}", "heads")) for h in prof.heads]
    source = "from file" if res.profile_from_file else "INFERRED - confirm before trusting"
    if "heads" in prof.guessed:
        from audit.rules.engine import attributes_judged

        rows.append(("heads", show.text(
            "named after the output tensors with labels 0..k-1: no rule can judge them until each output is mapped "
            "to an attribute and its labels in the profile (--write-profile, then edit 'heads'); names the packs "
            f"read: {', '.join(attributes_judged())} (see 'faceaudit rules metrics')", "yellow")))
    show.kv(console, f"profile ({source})", rows)
    if res.check is not None:
        c = res.check
        rows = [(f"{'* ' if s['in_use'] else ''}{s['label']}", f"{c.measure} {s['score']:.4f}"
                 + (f", AUC {s['auc']:.4f}" if "auc" in s else "")) for s in c.scores]
        show.kv(console, f"preprocessing check on {c.persons} people ({c.images} images), best first; * = in use",
               rows or [("result", c.note)])
        if c.better:
            show.line(console, f"the profile in use looks wrong: {c.better['setting']} is better by "
                              f"{c.better['diff']:.3f} (95% CI {c.better['ci_low']:.3f} to {c.better['ci_high']:.3f})")
        elif c.note:
            show.line(console, c.note)
    if res.written:
        show.line(console, f"wrote {res.written} - review the guessed fields, then remove them from 'guessed'")


@app.command("sample-data")
def sample_data(out: Path = typer.Option(Path("sample-data"), "--out", help="Folder to write."),
                people: Optional[int] = typer.Option(None, help="Number of people (default 300)."),
                images: Optional[int] = typer.Option(None, help="Images per person (default 8; 4 with --membership)."),
                membership: bool = typer.Option(False, "--membership", help="The membership probe's planted control "
                                                "instead: 200 training persons of the sample models, new images "
                                                "(member 1), and 300 persons no model saw (member 0).")) -> None:
    """Materialise the embedded synthetic dataset (deterministic, checked by checksum)."""
    folder, digest, reused = api.sample_data(out, people, images, membership)
    show.line(console, f"{'reused' if reused else 'wrote'} {folder} (sha256 {digest})")


@app.command()
def prepare(data: str = typer.Argument(..., help="Dataset folder or manifest of raw photos."),
            out: Path = typer.Option(..., "--out", help="Empty (or new) folder for the aligned copy."),
            detector: Detector = "auto", min_face_confidence: MinFaceConfidence = 0.9,
            size: int = typer.Option(112, "--size", help="Side of the aligned faces in pixels.")) -> None:
    """Detect and align faces: aligned copies, manifest.csv (with landmarks) and quality.csv of failures."""
    res = api.prepare(data, out, detector, min_face_confidence, size)
    show.line(console, f"wrote {res.images} aligned faces of {res.persons} people to {res.out} "
                       f"({res.failed} failed to acquire, {res.other} other problems; see quality.csv)")


def _progress_bar(to=None) -> Progress:
    # markup=False: probe labels carry model names and messages carry file names, which are data.
    return Progress(TextColumn("{task.fields[probe]:<10}", markup=False), BarColumn(),
                    TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                    TextColumn("{task.description}", markup=False), console=to or console)


def _bar_callback(bar: Progress):
    """An api.ProgressFn that keeps one bar per probe."""
    tasks: dict[str, int] = {}

    def progress(probe: str, fraction: float, message: str) -> None:
        # Labels carry model and dataset names, messages file and condition names: data, with control characters
        # shown as \xNN (a file name must not clear the screen or retitle the window).
        if probe not in tasks:
            tasks[probe] = bar.add_task(show.escaped(message), total=1.0, probe=show.escaped(probe))
        bar.update(tasks[probe], completed=fraction, description=show.escaped(message[:50]))
    return progress


def _run_with_progress(config, db: Path, resume: str | None = None) -> str:
    with _progress_bar() as bar:
        return api.run_audit(config, db, _bar_callback(bar), resume=resume)


@app.command()
def run(ctx: typer.Context, model: Path = typer.Option(..., "--model", help="ONNX model to audit."),
        data: Data = "sample",
        probes: str = typer.Option("leakage,identity", help="Comma-separated probes."),
        conditions: str = typer.Option("clean,mask:surgical,mask:cloth,mask:n95,sunglasses",
                                       help="Comma-separated conditions."),
        attributes: Optional[str] = typer.Option(None, help="Attributes to attack (default: all in the manifest)."),
        labels: Optional[Path] = typer.Option(None, "--labels", help="Labels file (CSV/Parquet) joined to the "
                                              "dataset on 'image' or 'subject'."),
        detector: Detector = "auto", min_face_confidence: MinFaceConfidence = 0.9,
        profile: Optional[Path] = typer.Option(None, help="Profile YAML (default: MODEL.profile.yaml or inferred)."),
        evaluator: Optional[Path] = typer.Option(None, help="Independent FR model judging inversion reconstructions."),
        attacker_model: Optional[Path] = typer.Option(None, help="Attacker-side FR model: identity loss for the "
                                                                  "inversion decoder."),
        attribute_model: Optional[Path] = typer.Option(None, help="Attribute model reading reconstructions."),
        surrogate: Optional[list[Path]] = typer.Option(None, "--surrogate", help="Cloak surrogate model (repeat)."),
        reference_model: Optional[list[Path]] = typer.Option(
            None, "--reference-model", help="FR model that never saw the audited persons: calibrates the membership "
            "probe's attacks (repeat)."),
        cloak_eps: str = typer.Option("8", help="Comma-separated cloak budgets on the 0-255 scale."),
        inversion_queries: Optional[int] = typer.Option(None, min=QUERY_FIRST_STEP, help="Queries per victim for the query-only "
                                                        "inversion attacker (default: the preset's 200/1000/5000)."),
        preset: Preset = "quick", seed: Seed = 0, device: Device = "auto",
        attack_precision: AttackPrecision = "auto",
        attack_threads: Optional[int] = typer.Option(
            None, "--attack-threads", min=1, max=1024, help="torch's threads for the run's attacks (default: every "
            "core). The inversion numbers depend on it (by up to about 0.01): the run records it; give a run's own "
            "count to reproduce it on another machine."),
        db: Db = DEFAULT_DB,
        pack: Packs = None, no_parity: bool = typer.Option(False, "--no-parity", help="Skip the torch/ort check (it still runs for the inversion and cloak probes, whose attacks go through torch)."),
        accept_profile: bool = typer.Option(False, "--accept-profile", help="Audit even if the preprocessing "
                                            "check finds a clearly better colour order / normalisation."),
        resume: Optional[str] = typer.Option(None, help="Finish an interrupted run (id or prefix)."),
        protocol: Optional[Path] = typer.Option(None, "--protocol", help="Protocol YAML pinning probes, conditions, "
                                                "preset, seeds, packs and the dataset (runs under one protocol are "
                                                "comparable).")) -> None:
    """Run probes on a model and a dataset; store metrics and findings."""
    from audit.config import make_config

    try:
        eps = [float(e) for e in csv_list(cloak_eps)]
    except ValueError:
        raise api.ConfigError(f"--cloak-eps: expected numbers such as 8 or 4,8, got {cloak_eps!r}") from None
    fields = dict(model=model, data=data, labels=labels, detector=detector,
                  min_face_confidence=min_face_confidence, probes=csv_list(probes), conditions=csv_list(conditions),
                  attributes=csv_list(attributes), profile=profile, evaluator=evaluator,
                  attacker_model=attacker_model, attribute_model=attribute_model,
                  surrogates=surrogate or [], reference_models=reference_model or [], cloak_eps=eps,
                  inversion_queries=inversion_queries, preset=preset, seed=seed,
                  device=device, attack_precision=attack_precision, attack_threads=attack_threads,
                  parity=not no_parity,
                  accept_profile=accept_profile)
    packs = csv_list(pack)
    if protocol is not None:  # its settings win; an option typed on the command line may not contradict them
        # (by name: typer may carry its own copy of click's ParameterSource enum)
        given = {k for k in fields if getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"}
        fields, packs = api.protocol_fields(protocol, fields, given, packs)
    config = make_config(**fields)
    from audit.rules.engine import load_packs

    load_packs(packs)  # a bad pack (or two with one id) is refused now, not after the whole run
    was_complete = False
    if resume and db.exists():
        from audit.store import Store

        with Store(db, read_only=True) as store:
            was_complete = store.run(store.resolve_run(resume))["status"] == "completed"
    run_id = _run_with_progress(config, db, resume)
    findings = api.evaluate_rules(run_id, db, packs)
    state = "was already completed (no probe ran again)" if was_complete else "completed"
    show.line(console, f"run {run_id} {state}: {_counts(findings)} (store: {db})")


def _counts(findings) -> str:
    if findings is None or len(findings) == 0:
        return "no findings"
    vc = findings["status"].value_counts()
    return ", ".join(f"{vc.get(s, 0)} {s}" for s in ("fail", "warn", "pass", "not_applicable"))


STATUS_STYLE = {"fail": "bold red", "warn": "bold yellow", "pass": "green", "not_applicable": "dim"}


@runs_app.command("list")
def runs_list(db: Db = DEFAULT_DB,
              as_json: bool = typer.Option(False, "--json", help="Print the runs as a JSON list.")) -> None:
    """List runs, newest first."""
    from audit.paths import require_store

    require_store(db)  # a mistyped --db is an error, as for every reading command (not "no runs", nor [] in --json)
    df = api.list_runs(db)
    if as_json:
        show.print_json(show.records(df))
        return
    if df.empty:
        show.line(console, f"no runs in {db}; start with 'faceaudit demo' or 'faceaudit run --model M.onnx'")
        return
    # The run id (it starts with the date and time) and the status are never cut; names fold; --json has all.
    cols, ids = ["run", "status", "fail", "warn", "pass", "model", "dataset"], ("run", "status")
    t = show.table(cols, ids=ids, numbers=("pass", "warn", "fail"))
    rows = [[r.run_id, r.status, str(r.n_fail), str(r.n_warn), str(r.n_pass), str(r.model), str(r.dataset)]
            for r in df.itertuples()]
    show.fit_ids(t, rows, ids)
    for r in rows:
        t.add_row(*map(show.text, r))
    console.print(t)


@runs_app.command("show")
def runs_show(run_id: str, db: Db = DEFAULT_DB,
              probe: Optional[str] = typer.Option(None, help="Only metrics of this probe."),
              all_metrics: bool = typer.Option(False, "--all", help="Show every metric row."),
              as_json: bool = typer.Option(False, "--json", help="Print run, probes, findings and every metric as "
                                                                  "JSON.")) -> None:
    """Show one run: status, probes, findings and headline metrics."""
    detail = api.show_run(run_id, db)
    r = detail["run"]
    m = detail["metrics"]
    if probe:
        known = set(detail["probes"]["probe"]) | set(detail["metrics"]["probe"])
        if probe not in known:
            raise api.ConfigError(f"--probe {probe}: run {r['run_id']} has no such probe (its probes: "
                                  f"{', '.join(sorted(known)) or 'none'})")
        m = m[m["probe"] == probe]
    if as_json:
        show.print_json({"run": show.record(r), "probes": show.records(detail["probes"]),
                        "findings": show.records(detail["findings"]), "metrics": show.records(m)})
        return
    show.kv(console, f"run {r['run_id']}", [("status", r["status"]), ("model", r["model_name"]),
                                           ("model sha256", r["model_id"]), ("dataset", r["dataset_name"]),
                                           ("dataset id", r["dataset_id"]), ("started", r["started_at"]),
                                           ("finished", r["finished_at"]), ("seed", r["seed"])]
           + ([("error", r["error"])] if r.get("error") else [])
           + ([("parity", r["parity"])] if r.get("parity") else []))
    for p in detail["probes"].itertuples():
        show.line(console, f"  probe {p.probe}: {p.status} in {p.seconds:.1f}s")
    f = detail["findings"]
    if len(f):
        # One finding per line (status, pack/rule, observed, title): readable at any width, ids never cut.
        show.line(console, show.text("findings", "bold"))
        for x in f.itertuples():
            obs = "-" if x.observed != x.observed else f"{x.observed:.3f}"
            show.line(console, show.text(f"  {x.status:<15}", STATUS_STYLE.get(x.status, "")),
                     f"{x.pack}/{x.rule_id}  {obs}  {x.title}")
    if not all_metrics:
        m = m[m["group"] == "all"].head(40)
    # The numbers right after the metric's name and never cut; where the row applies (probe, condition,
    # attribute, group, setting) in one last column that folds, so at 80 columns the numbers are on screen.
    cols = ["metric", "value", "95% CI", "n", "where"]
    t = show.table(cols, numbers=("value", "95% CI", "n"),
                  title=f"metrics ({'all' if all_metrics else 'first 40 overall rows; --all for every row'})")
    for x in m.itertuples():
        ci = "" if x.ci_low != x.ci_low else f"[{x.ci_low:.3f}, {x.ci_high:.3f}]"
        where = " ".join(v for v in (x.probe, x.condition, x.attribute, "" if x.group == "all" else x.group,
                                     x.setting) if v)
        t.add_row(*map(show.text, [x.metric, "" if x.value != x.value else f"{x.value:.4f}", ci, x.n, where]))
    console.print(t)


@app.command()
def report(run_id: str = typer.Argument("latest", help="Run id, unique prefix, or 'latest'."), db: Db = DEFAULT_DB,
           out: Path = typer.Option(Path("reports"), "--out", help="Folder for the files."),
           format: Formats = "html,pdf", pack: Packs = None, no_faces: NoFaces = False,
           sign_key: Optional[Path] = typer.Option(None, "--sign-key", help="Ed25519 private key (faceaudit keygen): "
                                                   "add an attestation page and write a signed bundle."),
           signer: Optional[str] = typer.Option(None, "--signer", help="Name of the responsible person signing.",
                                                envvar="FACEAUDIT_SIGNER")) -> None:
    """Render a stored run to HTML/PDF (re-applying packs given with --pack); nothing is recomputed."""
    for path in api.build_report(run_id, db, out, csv_list(format), no_faces, csv_list(pack), sign_key, signer,
                                 apply_packs=True):
        show.line(console, f"wrote {path}")


@app.command()
def compare(run_ids: list[str] = typer.Argument(..., help="Two or more run ids (or prefixes)."), db: Db = DEFAULT_DB,
            out: Path = typer.Option(Path("reports"), "--out", help="Folder for the files."),
            format: Formats = "html,pdf",
            reference: str | None = typer.Option(None, "--reference", help="Run every other is compared with, "
                                                 "paired (default: the first).")) -> None:
    """Comparison report of several runs: what differs between them, paired differences and rankings when they
    are comparable, values side by side."""
    for path in api.compare(run_ids, db, out, csv_list(format), reference=reference):
        show.line(console, f"wrote {path}")


@app.command()
def demo(out: Path = typer.Option(Path("faceaudit-demo"), "--out", help="Folder for store, data and reports."),
         preset: Preset = "quick", seed: Seed = 0) -> None:
    """Materialise the sample data, audit every sample model (and each recognition model for membership on the
    planted membership set), apply every pack, write reports and comparisons."""
    with _progress_bar() as bar:
        res = api.demo(out, preset, seed, _bar_callback(bar))
    show.line(console, f"store:   {res.db}")
    for r in res.reports:
        show.line(console, f"report:  {r}")
    show.line(console, f"runs:    {', '.join(res.runs)}  (faceaudit runs list --db {res.db})")


@app.command()
def campaign(file: Path = typer.Argument(..., help="Campaign YAML (models x datasets, one preset and seed)."),
             db: Optional[Path] = typer.Option(None, "--db", help="Store (default: FILE with .duckdb).",
                                               envvar="FACEAUDIT_DB"),
             executor: str = typer.Option("local", "--executor", help="local | ray"),
             address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (HOST:PORT)."),
             out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for the comparison report."),
             format: Formats = "html,pdf") -> None:
    """Run a campaign: every cell (model x dataset) is an ordinary run in one store; cells already
    completed with the same settings are skipped. Exit 1 if a cell failed."""
    with _progress_bar() as bar:
        res = api.run_campaign(file, db, executor, address, out_dir, csv_list(format), _bar_callback(bar))
    for c in res.cells:
        show.line(console, f"{c['status']:<9} {c['cell']}" + (f"  run {c['run_id']}" if c["run_id"] else "")
                 + (f"  ({c['error']})" if c["error"] else "")
                 + (f"  (same model, dataset and settings as {c['same_as']})" if c.get("same_as") else ""))
    for path in res.reports:
        show.line(console, f"wrote {path}")
    show.line(console, f"store: {res.db}" if Path(res.db).exists() else "store: none written (no cell stored a run)")
    if any(c["status"] == "failed" for c in res.cells):
        raise typer.Exit(1)


@app.command()
def tui(db: Db = DEFAULT_DB, out: Path = typer.Option(Path("reports"), "--out", help="Folder for exported reports."),
        models: Path = typer.Option(Path("."), "--models", help="Folder the model picker starts in.")) -> None:
    """Terminal interface: browse runs, start audits with live progress, read findings, compare, export."""
    from audit.tui.app import FaceAuditApp

    tui_app = FaceAuditApp(db, out, models)
    tui_app.run()
    if tui_app.return_code:  # the TUI ended on an error it could not show: the shell must see a failure
        raise typer.Exit(tui_app.return_code)


@rules_app.command("list")
def rules_list() -> None:
    """List the rule packs shipped under rules/."""
    from audit.rules import available_packs, load_pack

    for path in available_packs():
        pack = load_pack(path)
        show.line(console, show.text(pack.pack, "bold"), f" v{pack.version}: {pack.title} ({len(pack.rules)} rules) - {path}")


@rules_app.command("check")
def rules_check(file: Path) -> None:
    """Validate a rule-pack file; errors name the file, rule and field."""
    from audit.rules import load_pack

    pack = load_pack(file)
    show.line(console, f"{file}: pack '{pack.pack}' v{pack.version} is valid ({len(pack.rules)} rules)")


@rules_app.command("metrics")
def rules_metrics() -> None:
    """List the metric names rules can use, with their meaning."""
    from audit.metrics.catalogue import METRICS

    for name, m in METRICS.items():
        show.line(console, show.text(name, "bold"), f" ({m['probe']}): {m['meaning']}")
    from audit.rules.engine import attributes_judged

    show.line(console, show.text("attribute names the shipped packs judge", "bold"), ": "
              + ", ".join(attributes_judged()) + ". Dataset columns and an attributes model's heads must carry these "
              "names (profile: heads: - {attribute: sex, output: <tensor>, type: categorical, labels: [female, male]}; "
              "age is a regression head in years) for the rules to judge them; any other name is measured but no "
              "shipped rule reads it.")


# ---------------------------------------------------------------------------- evidence
@app.command()
def export(run_id: str = typer.Argument("latest", help="Run id, unique prefix, or 'latest'."), db: Db = DEFAULT_DB,
           out: Path = typer.Option(Path("reports"), "--out", help="Folder for the files."),
           format: str = typer.Option("json", "--format", help="Comma-separated: json (everything, see the JSON "
                                                               "schema) and/or parquet (the metrics table).")) -> None:
    """Write a run's results as machine-readable JSON and/or Parquet."""
    for path in api.export_run(run_id, db, out, csv_list(format)):
        show.line(console, f"wrote {path}")


@app.command()
def keygen(out: Path = typer.Argument(..., help="Private key file to write; the public key goes to OUT.pub.")) -> None:
    """Make an Ed25519 key pair for signing reports (private key written with mode 0600)."""
    from audit.evidence import fingerprint
    from audit.evidence.keys import load_public

    priv, pub = api.keygen(out)
    show.line(console, f"private key: {priv} (mode 0600; keep it secret)\npublic key:  {pub} (give it to verifiers)\n"
                       f"fingerprint: {fingerprint(load_public(pub))}")


@app.command()
def attest(run_id: str = typer.Argument("latest", help="Run id, unique prefix, or 'latest'."),
           key: Path = typer.Option(..., "--key", help="Ed25519 private key (faceaudit keygen)."),
           signer: Optional[str] = typer.Option(None, "--signer", help="Name of the responsible person signing.",
                                                envvar="FACEAUDIT_SIGNER"),
           report_files: Optional[list[Path]] = typer.Option(None, "--report", help="Report file to cover (repeat); "
                                                             "signed only if each page is what the store renders."),
           db: Db = DEFAULT_DB, out: Path = typer.Option(Path("reports"), "--out", help="Folder for the files.")) -> None:
    """Sign an in-toto statement (test-result predicate, DSSE, Ed25519) about a stored run."""
    for path in api.attest_run(run_id, db, key, out, signer, report_files):
        show.line(console, f"wrote {path}")


@app.command()
def verify(bundle: Path = typer.Argument(..., help="Attestation bundle (.intoto.json)."),
           report_files: Optional[list[Path]] = typer.Option(None, "--report", help="File to check against the "
                                                             "signed statement (repeat); default: those beside it."),
           pubkey: Optional[Path] = typer.Option(None, "--pubkey", help="Signer's public key (.pub).")) -> None:
    """Check an attestation's signature and that each report file is the one that was signed."""
    res = api.verify_bundle(bundle, report_files, pubkey)
    stmt = res.statement
    key = ("by the given public key" if res.trusted_key else
           "by the key inside the bundle only - pass --pubkey to check WHO signed")
    show.line(console, f"OK: signature valid {key} ({res.keyid}); result {stmt['predicate'].get('result')}")
    for line in api.describe_statement(stmt):  # what the result is about, before anyone trusts it
        show.line(console, f"  {line}")
    for path, name in res.checked:
        show.line(console, f"OK: {path} matches the signed subject {name}")
    if not res.checked:
        console.print("no report file was checked (give --report FILE)", markup=False, highlight=False)


@app.command()
def gate(run_id: str = typer.Argument("latest", help="Run id, unique prefix, or 'latest'."), db: Db = DEFAULT_DB,
         pack: Packs = None,
         fail_on: str = typer.Option("fail", "--fail-on", help="fail | warn: the finding level that closes the gate."),
         junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML (one test case per rule).")
         ) -> None:
    """CI gate: exit 1 when a finding at or above --fail-on exists (at warn, also a rule whose interval cannot tell a
    pass from a warning or failure: UNDECIDED), the run is incomplete or no rule judged it; 0 otherwise."""
    res = api.gate(run_id, db, csv_list(pack), fail_on, junit)
    counts = res.findings["status"].value_counts()
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("fail", "warn", "pass", "not_applicable"))
    summary += f" (of which {res.n_undecided} undecided: too uncertain to judge)" if res.n_undecided else ""
    for r in res.blocking.itertuples():  # a rule too uncertain to judge at the level is UNDECIDED
        show.line(console, f"{'UNDECIDED' if r.status == 'not_applicable' else r.status.upper()} "
                           f"{r.pack}/{r.rule_id}: {r.message}")
    for r in (res.doubtful if res.doubtful is not None else res.findings.iloc[:0]).itertuples():
        show.line(console, f"{'UNDECIDED' if r.status == 'not_applicable' else 'WARN, a fail not excluded,'} "
                           f"{r.pack}/{r.rule_id} (closes the gate at --fail-on warn): {r.message}")
    if res.incomplete:
        show.line(console, f"INCOMPLETE {res.incomplete}")
    if res.unjudged:
        show.line(console, f"NOT JUDGED {res.unjudged}")
    if res.unread:
        show.line(console, f"UNREAD attribute(s) {', '.join(res.unread)}: measured, but no rule of the packs reads "
                  "them (the packs read attributes by name: sex, skin_tone, race, age); rename the column to have it "
                  "judged")
    verdict = "CLOSED" if res.exit_code else "OPEN"
    show.line(console, f"gate {verdict} (--fail-on {res.fail_on}): {summary}" + (f"; JUnit: {junit}" if junit else ""))
    raise typer.Exit(res.exit_code)


def _io_message(exc: BaseException) -> str | None:
    """One line for an I/O failure no entry point named (disk full, permission denied, a store write)."""
    import duckdb

    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc} - check the path, its permissions and free disk space"
    if isinstance(exc, duckdb.Error):
        return f"the store could not be read or written: {str(exc).splitlines()[0]}"
    return None


def _usage_message(exc: BaseException) -> str | None:
    """typer/click's own usage errors (``--seed abc``, an unknown option) as one line naming the option.

    Recognised by their interface (``format_message`` and ``exit_code``) because typer vendors click
    privately; typer's default is a boxed, multi-line panel."""
    if hasattr(exc, "format_message") and hasattr(exc, "exit_code") and not isinstance(exc, FaceAuditError):
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        return f"{exc.format_message()}{hint}"
    return None


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=None) -> None:
    """faceaudit's own warnings as one line on stderr; any other warning as Python shows it."""
    if issubclass(category, FaceAuditWarning):
        show.line(err_console, Text("warning: ", style="yellow"), " ".join(str(message).split()))
    else:
        _default(message, category, filename, lineno, file, line)


def main() -> None:
    import functools
    import warnings

    warnings.showwarning = functools.partial(_show_warning, _default=warnings.showwarning)
    try:
        # standalone_mode=False: usage errors reach this handler instead of typer's multi-line panel.
        rv = app(standalone_mode=False)
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare 'faceaudit' / 'faceaudit runs': help was shown
            sys.exit(2)
        msg = str(exc) if isinstance(exc, FaceAuditError) else _io_message(exc) or _usage_message(exc)
        if STATE["debug"] or msg is None:
            raise
        # One line, whatever the message holds: newlines folded, brackets shown as written.
        show.line(err_console, Text("error: ", style="red"), " ".join(msg.split()))
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        err_console.print("aborted", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:  # outside a run, which stores itself cancelled and says so
        err_console.print("aborted", highlight=False)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
