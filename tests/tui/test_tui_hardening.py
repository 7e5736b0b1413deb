"""Issue 11, classes 2 and 7: the TUI shows data literally, shows errors inside itself, and its metrics
table shows the numbers at 80x24."""

import subprocess
import sys

import duckdb
import pytest

from audit.tui.app import FaceAuditApp
from audit.tui.screens.detail import RunDetailScreen
from audit.tui.screens.new_audit import NewAuditScreen
from tests.builders import make_onnx, store_with_run

SIZE = (80, 24)
HOSTILE = "m[/b] [bold]x[/] $y$"


def visible(widget) -> str:
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "s.duckdb"
    run_id = store_with_run(db, HOSTILE, "", {
        "probe": "identity", "condition": "mask:surgical+patch:0.3", "metric": "fmr_max_geomean",
        "attribute": "skin_tone_long_name", "group": "[/red]", "setting": "t=1e-3;fmr=0.001", "direction": "neutral"})
    return db, run_id


async def test_hostile_names_and_numbers_visible_at_80(store, tmp_path):
    db, run_id = store
    app = FaceAuditApp(db, tmp_path / "reports")
    async with app.run_test(size=SIZE) as pilot:
        runs = app.screen.query_one("#runs")
        assert runs.row_count == 1 and any(str(c) == HOSTILE for c in runs.get_row_at(0))
        await pilot.press("enter")
        assert isinstance(app.screen, RunDetailScreen)
        assert HOSTILE in str(app.screen.query_one("#summary").render())
        metrics = app.screen.query_one("#metrics")
        await pilot.pause()
        shown = visible(metrics)
        assert "0.1234" in shown and "0.050-0.200" in shown and "1200" in shown, shown
    assert app.return_code in (0, None)


async def test_locked_store_is_an_error_inside_the_tui(store, tmp_path):
    db, _ = store
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(db)!r}); "
                               "print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        app = FaceAuditApp(db, tmp_path / "reports")
        async with app.run_test(size=SIZE) as pilot:
            assert "in use by another process" in str(app.screen.query_one("#empty").render())
            await pilot.press("r", "enter", "n")  # still alive and usable
            assert isinstance(app.screen, NewAuditScreen)
    finally:
        holder.kill()
        holder.wait()
    assert app.return_code in (0, None)


async def test_foreign_store_is_an_error_inside_the_tui(tmp_path):
    db = tmp_path / "theirs.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE t (a INT)").close()
    app = FaceAuditApp(db, tmp_path / "reports")
    async with app.run_test(size=SIZE):
        assert "not a faceaudit store" in str(app.screen.query_one("#empty").render())
    assert app.return_code in (0, None)


async def test_unreadable_profile_and_bad_paths_show_inline(tmp_path, store):
    db, _ = store
    (tmp_path / "v[").mkdir()
    model = make_onnx(tmp_path / "v[" / "b].onnx")  # path reads v[/b].onnx
    (tmp_path / "v[" / "b].profile.yaml").write_bytes(b"name: \xff\xfe\n")
    (tmp_path / "dir.onnx").mkdir()
    app = FaceAuditApp(db, tmp_path / "reports", start_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        screen.query_one("#model").value = str(model)
        await pilot.pause()
        assert "not UTF-8" in str(screen.query_one("#model-info").render())
        screen.query_one("#model").value = str(tmp_path / "dir.onnx")
        await pilot.pause()
        assert str(screen.query_one("#model-info").render())
        assert isinstance(app.screen, NewAuditScreen)
    assert app.return_code in (0, None)


def test_tui_that_dies_exits_non_zero(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import audit.tui.app as tui_app
    from audit.cli import app

    class Dying:
        return_code = 1

        def __init__(self, *a):
            pass

        def run(self):
            pass

    monkeypatch.setattr(tui_app, "FaceAuditApp", Dying)
    result = CliRunner().invoke(app, ["tui", "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 1
