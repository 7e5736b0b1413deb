"""New audit: choose model, dataset, probes, conditions, preset, packs and device, or a protocol that pins them;
validate before running."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from audit.cli_output import text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DirectoryTree, Footer, Header, Input, Label, Select, SelectionList, Static

from audit import api
from audit.config import DEFAULT_CONDITIONS, PRESETS, AuditConfig
from audit.errors import FaceAuditError, first_error
from audit.probes import REGISTRY

EXTRA_CONDITIONS = ["patch:0.3", "freqmix:3"]


class OnnxTree(DirectoryTree):
    """Folders and .onnx files only."""

    def filter_paths(self, paths):
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or p.suffix == ".onnx")]


class NewAuditScreen(Screen):
    BINDINGS = [Binding("ctrl+s", "start", "Start audit"), Binding("escape", "back", "Back")]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="form"):
            with Vertical():
                yield Label("Model (.onnx) - pick in the tree or type a path", classes="title")
                yield OnnxTree(str(self.app.start_dir), id="tree")
                yield Input(placeholder="path/to/model.onnx", id="model")
                yield Static("", id="model-info", classes="hint")
                yield Label("Dataset: 'sample', 'sample-membership' or a folder / manifest", classes="title")
                yield Input(value="sample", id="data")
            with VerticalScroll(id="choices"):  # at 80x24 the last fields sit below the screen: it scrolls
                yield Label("Probes", classes="title")
                yield SelectionList[str](*[(f"{n} - {c.title}", n, not getattr(c, "opt_in", False))
                                           for n, c in REGISTRY.items()], id="probes")
                yield Label("Conditions", classes="title")
                yield SelectionList[str](*[(c, c, True) for c in DEFAULT_CONDITIONS],
                                         *[(c, c, False) for c in EXTRA_CONDITIONS], id="conditions")
                with Horizontal(id="buttons"):
                    yield Select([(p, p) for p in PRESETS], value="quick", allow_blank=False, id="preset")
                    yield Select([(d, d) for d in ("auto", "cpu", "cuda")], value="auto", allow_blank=False,
                                 id="device")
                yield Input(placeholder="rule packs, comma-separated (empty = all)", id="packs")
                yield Input(placeholder="membership reference models (.onnx), comma-separated", id="references")
                yield Input(placeholder="protocol (.yaml): its settings replace the choices here", id="protocol")
                yield Static("", id="protocol-info", classes="hint")
                yield Static("", id="errors", classes="error")
                yield Button("Start audit (ctrl+s)", id="start", variant="primary")
        yield Footer()

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#model", Input).value = str(event.path)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "model" and event.value.endswith(".onnx"):
            self._inspect(event.value)
        if event.input.id == "protocol":
            self._describe_protocol(event.value.strip())

    def _describe_protocol(self, path: str) -> None:
        """What a protocol file pins, shown under its field as soon as it reads (an error in red), so the person sees
        which of their choices it replaces before starting."""
        from audit.protocol import load_protocol

        info = self.query_one("#protocol-info", Static)
        if not path.endswith((".yaml", ".yml")):
            info.update("")
            return
        try:
            p = load_protocol(path)
        except FaceAuditError as exc:
            info.update(text(str(exc), style="red"))
            return
        packs = ", ".join(p.packs) or "the ones typed above, else all"
        info.update(text(f"protocol {p.protocol} v{p.version}: probes {', '.join(p.probes)}; conditions "
                         f"{', '.join(p.conditions)}; preset {p.preset}, seed {p.seed}; packs {packs}. These replace "
                         "the probes, conditions and preset chosen here."))

    def _inspect(self, path: str) -> None:
        info = self.query_one("#model-info", Static)
        try:
            res = api.inspect_model(path)
        except Exception as exc:  # noqa: BLE001 - typing a path must never end the TUI; shown inline
            info.update(text(str(exc) if isinstance(exc, FaceAuditError) else f"{type(exc).__name__}: {exc}",
                             style="red"))
            return
        p = res.profile
        guessed = f" - guessed: {', '.join(p.guessed)}" if p.guessed else ""
        info.update(text(f"{res.info.sha256} opset {res.info.opset} - {p.kind}, "
                         f"{p.input.size[0]}x{p.input.size[1]} {p.input.layout} {p.input.color}"
                         f" ({'profile file' if res.profile_from_file else 'inferred profile'}){guessed}"))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    def _config(self) -> tuple[AuditConfig, list[str] | None]:
        model = self.query_one("#model", Input).value.strip()
        if not model:
            raise FaceAuditError("choose a model file first")
        packs = [p.strip() for p in self.query_one("#packs", Input).value.split(",") if p.strip()] or None
        refs = [Path(p.strip()) for p in self.query_one("#references", Input).value.split(",") if p.strip()]
        fields = dict(model=Path(model), data=self.query_one("#data", Input).value.strip() or "sample",
                      probes=list(self.query_one("#probes", SelectionList).selected),
                      conditions=list(self.query_one("#conditions", SelectionList).selected),
                      preset=self.query_one("#preset", Select).value, reference_models=refs,
                      device=self.query_one("#device", Select).value)
        protocol = self.query_one("#protocol", Input).value.strip()
        if protocol:  # its settings replace the screen's (shown under the field); its packs are checked by hash
            fields, packs = api.protocol_fields(protocol, fields, set(), packs)
            packs = packs or None
        try:
            cfg = AuditConfig(**fields)
        except ValidationError as exc:
            field, msg = first_error(exc)
            raise FaceAuditError(f"{field}: {msg}") from None
        return cfg, packs

    def action_start(self) -> None:
        try:
            cfg, packs = self._config()
        except FaceAuditError as exc:
            self._say(text(str(exc)))
            return
        self._say("checking model, dataset and choices...")
        self._validate(cfg, packs)

    def _say(self, message) -> None:
        """Show ``message`` under the choices and scroll it into view (on a small terminal it is below the fold)."""
        errors = self.query_one("#errors", Static)
        errors.update(message)
        errors.scroll_visible(animate=False)

    @work(thread=True, exclusive=True)
    def _validate(self, cfg: AuditConfig, packs: list[str] | None) -> None:
        try:
            api.check_config(cfg, packs)
        except Exception as exc:  # noqa: BLE001 - an unexpected error is shown, never a dead TUI
            msg = str(exc) if isinstance(exc, FaceAuditError) else f"{type(exc).__name__}: {exc}"
            self.app.call_from_thread(self._say, text(msg))
            return
        self.app.call_from_thread(self._launch, cfg, packs)

    def _launch(self, cfg: AuditConfig, packs: list[str] | None) -> None:
        from audit.tui.screens.running import RunningScreen

        self.query_one("#errors", Static).update("")
        self.app.switch_screen(RunningScreen(cfg, packs))

    def action_back(self) -> None:
        self.app.pop_screen()
