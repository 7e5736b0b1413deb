"""Run detail: findings coloured by status, filterable metrics, export to HTML/PDF."""

from __future__ import annotations

from audit.cli_output import text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from audit import api
from audit.errors import FaceAuditError
from audit.tui.screens.export import export_in_worker

METRIC_COLUMNS = ("metric", "value", "95% CI", "n", "condition", "attribute", "group", "setting", "probe")
STYLE = {"fail": "bold white on red", "warn": "bold black on yellow", "pass": "bold white on green",
         "not_applicable": "white on grey37"}


class RunDetailScreen(Screen):
    BINDINGS = [Binding("e", "export", "Export HTML+PDF"), Binding("escape", "back", "Back")]

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self.detail = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="summary", classes="title")
        yield DataTable(id="findings", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="filters"):
            yield Input(placeholder="probe", id="f-probe")
            yield Input(placeholder="condition", id="f-condition")
            yield Input(placeholder="group / attribute", id="f-group")
        yield DataTable(id="metrics", zebra_stripes=True)
        yield Static("", id="export", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        try:
            self.detail = api.show_run(self.run_id, self.app.db)
        except FaceAuditError as exc:  # e.g. the store is locked by a running audit: say so, escape goes back
            self.query_one("#summary", Static).update(text(f"{exc} - escape to go back", style="bold red"))
            return
        r = self.detail["run"]
        self.query_one("#summary", Static).update(
            text(f"{r['model_name']} on {r['dataset_name']} - run {r['run_id']} - {r['status']}"))
        f = self.query_one("#findings", DataTable)
        f.add_columns("status", "rule", "observed", "title", "references")
        order = {"fail": 0, "warn": 1, "pass": 2, "not_applicable": 3}
        for x in sorted(self.detail["findings"].itertuples(), key=lambda x: (order[x.status], x.rule_id)):
            obs = "" if x.observed != x.observed else f"{x.observed:.3f}"
            f.add_row(text(x.status.replace("_", " "), style=STYLE[x.status]), text(f"{x.pack}:{x.rule_id}"),
                      text(obs), text(x.title), text(", ".join(__import__("json").loads(x.refs))))
        m = self.query_one("#metrics", DataTable)
        # The numbers follow the metric's name, so they are on screen at 80 columns; the labels that only
        # narrow a row down (condition, attribute, group, setting, probe) come after them.
        m.add_columns(*METRIC_COLUMNS)
        self._fill_metrics()

    def _fill_metrics(self) -> None:
        if self.detail is None:
            return
        m = self.query_one("#metrics", DataTable)
        m.clear()
        df = self.detail["metrics"]
        probe = self.query_one("#f-probe", Input).value.strip()
        cond = self.query_one("#f-condition", Input).value.strip()
        group = self.query_one("#f-group", Input).value.strip()
        if probe:
            df = df[df["probe"].str.contains(probe, regex=False)]
        if cond:
            df = df[df["condition"].str.contains(cond, regex=False)]
        if group:
            df = df[df["group"].str.contains(group, regex=False) | df["attribute"].str.contains(group, regex=False)]
        for x in df.head(500).itertuples():
            ci = "" if x.ci_low != x.ci_low else f"{x.ci_low:.3f}-{x.ci_high:.3f}"
            m.add_row(*map(text, [x.metric, "" if x.value != x.value else f"{x.value:.4f}", ci, str(x.n),
                                  x.condition, x.attribute, x.group, x.setting, x.probe]))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill_metrics()

    def action_export(self) -> None:
        export_in_worker(self, lambda: api.build_report(self.run_id, self.app.db, self.app.reports))

    def action_back(self) -> None:
        self.app.pop_screen()
