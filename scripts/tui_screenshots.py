"""SVG screenshots of every TUI screen for docs/ (run after `make demo`).

    .venv/bin/python scripts/tui_screenshots.py [--db faceaudit-demo/faceaudit.duckdb]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from audit import api
from audit.config import AuditConfig
from audit.tui.app import FaceAuditApp
from audit.tui.screens.running import RunningScreen

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


async def shoot(db: Path) -> None:
    app = FaceAuditApp(db, Path("/tmp/faceaudit-shots"), start_dir=ROOT / "sample_data" / "models")
    # The detail and compare shots show battery runs (a demo store lists its membership runs first: they run last).
    runs = api.list_runs(db)
    shown = ((runs["dataset"] != "sample-membership") & (runs["status"] == "completed")).to_numpy()
    battery = int(shown.argmax()) if shown.any() else 0
    async with app.run_test(size=(100, 30)) as pilot:
        app.save_screenshot("tui-runs.svg", str(DOCS))
        await pilot.press(*["down"] * battery, "enter")
        await pilot.pause(0.5)
        app.save_screenshot("tui-detail.svg", str(DOCS))
        await pilot.press("escape")
        await pilot.pause(0.5)
        for key in ["down"] * battery + ["space", "down", "space", "c"]:  # one at a time: the cursor moves late
            await pilot.press(key)
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        app.save_screenshot("tui-compare.svg", str(DOCS))
        await pilot.press("escape", "n")
        await pilot.pause(0.5)
        app.screen.query_one("#model").value = str(ROOT / "sample_data" / "models" / "fr-baseline.onnx")
        await pilot.pause(0.5)
        app.save_screenshot("tui-new-audit.svg", str(DOCS))
        await pilot.press("escape", "question_mark")
        app.save_screenshot("tui-help.svg", str(DOCS))
        await pilot.press("escape")
        cfg = AuditConfig(model=ROOT / "sample_data" / "models" / "fr-baseline.onnx", conditions=["clean", "mask:n95"])
        screen = RunningScreen(cfg)
        await app.push_screen(screen)
        for _ in range(600):
            await pilot.pause(0.1)
            if len(screen.bars) >= 2:
                break
        app.save_screenshot("tui-running.svg", str(DOCS))
        await pilot.press("x")
        for _ in range(600):
            if screen.done:
                break
            await pilot.pause(0.1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, default=ROOT / "faceaudit-demo" / "faceaudit.duckdb")
    args = ap.parse_args()
    if api.list_runs(args.db).empty:
        raise SystemExit(f"{args.db} has no runs; run `make demo` first")
    asyncio.run(shoot(args.db))


if __name__ == "__main__":
    main()
