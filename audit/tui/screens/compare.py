"""Compare: headline metrics of several runs side by side; export the comparison report."""

from __future__ import annotations

from audit.cli_output import text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from audit import api
from audit.errors import FaceAuditError
from audit.tui.screens.export import export_in_worker


class CompareScreen(Screen):
    BINDINGS = [Binding("e", "export", "Export HTML+PDF"), Binding("escape", "back", "Back")]

    def __init__(self, run_ids: list[str]):
        super().__init__()
        self.run_ids = run_ids

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Comparing {len(self.run_ids)} runs", classes="title")
        yield DataTable(id="compare", zebra_stripes=True)
        yield Static("", id="export", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        try:
            labels, rows = api.headline_table(self.run_ids, self.app.db)
        except FaceAuditError as exc:
            self.query_one("#export", Static).update(text(f"{exc} - escape to go back", style="bold red"))
            return
        t = self.query_one(DataTable)
        t.add_columns(*map(text, ["measure", *labels]))
        for label, cells in rows:
            t.add_row(*map(text, [label, *cells]))

    def action_export(self) -> None:
        export_in_worker(self, lambda: api.compare(self.run_ids, self.app.db, self.app.reports))

    def action_back(self) -> None:
        self.app.pop_screen()
