"""``faceaudit tui``: the application shell (screens and global bindings only)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding

from audit.tui.screens.help import HelpScreen
from audit.tui.screens.runs import RunsScreen


class FaceAuditApp(App):
    """Browse runs, start audits, read findings, compare and export."""

    CSS_PATH = "app.tcss"
    TITLE = "faceaudit"
    BINDINGS = [Binding("question_mark", "help", "Help"), Binding("q", "quit", "Quit")]

    def __init__(self, db: Path, reports: Path = Path("reports"), start_dir: Path = Path(".")):
        super().__init__()
        self.db = Path(db)
        """The DuckDB store every screen reads."""
        self.reports = Path(reports)
        """Where exported reports go."""
        self.start_dir = Path(start_dir)
        """Where the model picker starts."""
        self.sub_title = str(self.db)

    def on_mount(self) -> None:
        self.push_screen(RunsScreen())

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
