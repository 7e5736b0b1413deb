"""Shared export step: write report files in a worker thread and show the paths."""

from __future__ import annotations

from typing import Callable

from audit.cli_output import text
from textual.screen import Screen
from textual.widgets import Static


def export_in_worker(screen: Screen, write: Callable[[], list]) -> None:
    """Run ``write`` (returns written paths) in a thread; report into the screen's ``#export`` line."""
    line = screen.query_one("#export", Static)
    line.update("writing HTML and PDF...")

    def job() -> None:
        try:
            msg = "wrote " + ", ".join(str(p) for p in write())
        except Exception as exc:  # noqa: BLE001 - shown to the user
            msg = f"export failed: {exc}"
        screen.app.call_from_thread(line.update, text(msg))  # paths and messages are data, not markup

    screen.run_worker(job, thread=True, exclusive=True, group="export")
