"""Runs screen: every run in the store with its pass/warn/fail counts."""

from __future__ import annotations

from audit.cli_output import text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from audit import api
from audit.errors import FaceAuditError

EMPTY = ("No runs in this store yet.\n\nPress [b]n[/b] to start an audit of a model, or run "
         "[b]faceaudit demo[/b] in a shell to audit the sample models, then press [b]r[/b].")


class RunsScreen(Screen):
    BINDINGS = [Binding("n", "new", "New audit"), Binding("enter", "open", "Open", show=True),
                Binding("space", "mark", "Mark"), Binding("c", "compare", "Compare marked"),
                Binding("r", "refresh", "Refresh")]

    def __init__(self):
        super().__init__()
        self.marked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Runs", classes="title")
        yield Static(EMPTY, id="empty")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="status", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(" ", "run", "model", "dataset", "started", "status", "pass", "warn", "fail")
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        try:
            df = api.list_runs(self.app.db)
        except FaceAuditError as exc:  # a locked or foreign store: say so here, r retries
            table.display = False
            empty = self.query_one("#empty", Static)
            empty.update(text(f"{exc}\n\nPress r to try again, q to quit."))
            empty.display = True
            return
        self.query_one("#empty", Static).update(EMPTY)
        for r in df.itertuples():
            # text(), not str: DataTable reads str cells as markup, and model and dataset names are data (control
            # characters shown as \\xNN: a file name must not rewrite the terminal).
            table.add_row(*map(text, ["*" if r.run_id in self.marked else " ", r.run_id, str(r.model),
                                      str(r.dataset), str(r.started_at)[:16], r.status, str(r.n_pass),
                                      str(r.n_warn), str(r.n_fail)]), key=r.run_id)
        self.query_one("#empty").display = df.empty
        table.display = not df.empty
        if not df.empty:
            table.focus()

    def _current(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_new(self) -> None:
        from audit.tui.screens.new_audit import NewAuditScreen

        self.app.push_screen(NewAuditScreen())

    def action_open(self) -> None:
        from audit.tui.screens.detail import RunDetailScreen

        run_id = self._current()
        if run_id:
            self.app.push_screen(RunDetailScreen(run_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_mark(self) -> None:
        run_id = self._current()
        if run_id:
            self.marked ^= {run_id}
            table = self.query_one(DataTable)
            table.update_cell(run_id, table.ordered_columns[0].key, "*" if run_id in self.marked else " ")
            self.query_one("#status", Static).update(f"{len(self.marked)} run(s) marked for comparison")

    def action_compare(self) -> None:
        from audit.tui.screens.compare import CompareScreen

        if len(self.marked) < 2:
            self.query_one("#status", Static).update("Mark at least two runs with space, then press c")
            return
        self.app.push_screen(CompareScreen(sorted(self.marked)))
