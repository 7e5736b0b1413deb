"""Running: a progress bar per probe, a log, and cancel. The audit runs in a worker thread."""

from __future__ import annotations

import threading

from audit.cli_output import text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, ProgressBar, RichLog, Static

from audit import api
from audit.config import AuditConfig
from audit.errors import FaceAuditError


class RunningScreen(Screen):
    BINDINGS = [Binding("x", "cancel", "Cancel"), Binding("escape", "back", "Back"),
                Binding("q", "quit_running", "Quit")]

    def __init__(self, config: AuditConfig, packs: list[str] | None = None):
        super().__init__()
        self.config = config
        self.packs = packs
        self.cancel = threading.Event()
        self.done = False
        self.quitting = False
        """``q`` was pressed while the audit ran: the app exits once the run has ended cancelled."""
        self.run_id: str | None = None
        self.bars: dict[str, ProgressBar] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(text(f"Auditing {self.config.model.name} on {self.config.data} ({self.config.preset})"),
                     classes="title")
        yield Vertical(id="bars")
        yield RichLog(id="log", wrap=True, markup=True)
        yield Static("x cancels; finished probes are kept", id="state", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self._run()

    def _progress(self, probe: str, fraction: float, message: str) -> None:
        if probe not in self.bars:
            bar = ProgressBar(total=1.0, show_eta=False)
            self.bars[probe] = bar
            self.query_one("#bars").mount(Horizontal(Label(text(probe)), bar, classes="probe-row"))
            self.query_one(RichLog).write(text(probe, style="bold") + text(" started"))
        self.bars[probe].update(progress=fraction)
        if fraction >= 1.0 or message in ("starting",):
            self.query_one(RichLog).write(text(f"{probe}: {message}"))

    @work(thread=True, exclusive=True)
    def _run(self) -> None:
        call = self.app.call_from_thread
        try:
            run_id = api.run_audit(self.config, self.app.db, self._from_thread, cancel=self.cancel)
            findings = api.evaluate_rules(run_id, self.app.db, self.packs)
            counts = findings["status"].value_counts().to_dict()
            call(self._finish, run_id, f"completed: {counts.get('fail', 0)} fail, {counts.get('warn', 0)} warn, "
                                       f"{counts.get('pass', 0)} pass", "ok")
        except FaceAuditError as exc:
            call(self._finish, None, str(exc), "error")
        except Exception as exc:  # noqa: BLE001 - shown to the user, never swallowed silently
            call(self._finish, None, f"{type(exc).__name__}: {exc}", "error")

    def _from_thread(self, probe: str, fraction: float, message: str) -> None:
        """Progress from the worker; should the app be gone (it exited under the run), the run is cancelled
        (stored ``cancelled``, finished probes kept) instead of failing on the dead screen."""
        try:
            self.app.call_from_thread(self._progress, probe, fraction, message)
        except RuntimeError:
            self.cancel.set()

    def _finish(self, run_id: str | None, message: str, kind: str) -> None:
        self.done, self.run_id = True, run_id
        state = self.query_one("#state", Static)
        state.set_classes(kind)
        state.update(text(f"{message} - escape to go back" + (f" (run {run_id})" if run_id else "")))
        self.query_one(RichLog).write(text(message))
        if self.quitting:
            self.app.exit()

    def action_cancel(self) -> None:
        if not self.done:
            self.cancel.set()
            self.query_one("#state", Static).update("cancelling after the current step...")

    def action_quit_running(self) -> None:
        """``q`` while an audit runs cancels it cleanly and quits when it has stopped (a run is never left
        'failed' by quitting); when the audit is over, it quits at once."""
        if self.done:
            self.app.exit()
            return
        self.quitting = True
        self.cancel.set()
        self.query_one("#state", Static).update("quitting: cancelling the audit after the current step "
                                                "(finished probes are kept)...")

    def action_back(self) -> None:
        if self.done:
            self.app.pop_screen()
        else:
            self.query_one("#state", Static).update("still running: press x to cancel first")
