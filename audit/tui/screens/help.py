"""Help: every key binding, in a modal dialog."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """[b]faceaudit keys[/b]

[b]Runs[/b]        enter open · n new audit · space mark for compare · c compare marked · r refresh
[b]New audit[/b]   pick a model in the tree · tab between fields · ctrl+s start · escape back
[b]Running[/b]     x cancel (finished probes are kept) · q cancel, then quit · escape back when done
[b]Run detail[/b]  type in the filters to narrow metrics · e export HTML+PDF · escape back
[b]Compare[/b]     e export comparison · escape back
[b]Anywhere[/b]    ? this help · q quit

The store is the DuckDB file given with --db; every number shown comes from it.
Start with 'faceaudit demo' for sample runs, or press n on the runs screen."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help")

    def action_dismiss(self, result=None) -> None:
        self.dismiss(None)
