"""The TUI driven through Textual's Pilot against a real store, at 80x24."""

import pytest

from audit import api
from audit.config import AuditConfig
from audit.store import Store
from audit.tui.app import FaceAuditApp
from audit.tui.screens.compare import CompareScreen
from audit.tui.screens.detail import RunDetailScreen
from audit.tui.screens.help import HelpScreen
from audit.tui.screens.new_audit import NewAuditScreen
from audit.tui.screens.running import RunningScreen
from tests.builders import make_onnx

SIZE = (80, 24)


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_data):
    root = tmp_path_factory.mktemp("tui")
    model = make_onnx(root / "tiny.onnx")
    db = root / "store.duckdb"
    runs = []
    for seed in (0, 1):
        cfg = AuditConfig(model=model, data=str(small_data), conditions=["clean", "mask:surgical"], seed=seed,
                          bootstrap=30, mlp_epochs=10, parity=False)
        runs.append(api.run_audit(cfg, db))
        api.evaluate_rules(runs[-1], db)
    return root, db, model, runs


async def wait_for(pilot, condition, seconds=60.0):
    for _ in range(int(seconds / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError("condition not reached")


async def submit_clean_and_wait(pilot, app):
    """Submit the new-audit form with the clean condition only; wait until the run completes and return its
    running screen (asserting it completed)."""
    conds = app.screen.query_one("#conditions")
    conds.deselect_all()
    conds.select("clean")
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, RunningScreen))
    running = app.screen
    await wait_for(pilot, lambda: running.done, seconds=240)
    assert running.run_id and "completed" in str(running.query_one("#state").render())
    return running


async def test_empty_store_explains_how_to_start(tmp_path):
    app = FaceAuditApp(tmp_path / "empty.duckdb", tmp_path / "reports")
    async with app.run_test(size=SIZE) as pilot:
        empty = app.screen.query_one("#empty")
        assert empty.display and "faceaudit demo" in str(empty.render())
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_control_characters_in_a_model_name_are_shown_not_obeyed(tmp_path):
    """A review of the store: ESC in a model name reached the terminal from every TUI cell (rich's Text keeps it),
    clearing the screen and retitling the window; it is shown as \\x1b."""
    from tests.builders import store_with_run

    db = tmp_path / "s.duckdb"
    store_with_run(db, "v\x1b[2J\x1b]0;owned\x07x", "p", {
        "probe": "leakage", "condition": "clean", "metric": "normalised_gain", "attribute": "sex", "group": "all",
        "setting": "train=same", "direction": "higher_is_riskier"})
    app = FaceAuditApp(db, tmp_path / "reports")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        row = [str(c) for c in app.screen.query_one("#runs").get_row_at(0)]
        assert "v\\x1b[2J\\x1b]0;owned\\x07x" in row and not any("\x1b" in c or "\x07" in c for c in row)


async def test_runs_detail_filter_and_export(store, tmp_path):
    root, db, model, runs = store
    app = FaceAuditApp(db, tmp_path / "reports")
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#runs")
        assert table.row_count == 2
        await pilot.press("enter")
        assert isinstance(app.screen, RunDetailScreen)
        findings = app.screen.query_one("#findings")
        assert findings.row_count >= 20
        metrics = app.screen.query_one("#metrics")
        before = metrics.row_count
        app.screen.query_one("#f-probe").value = "identity"
        await pilot.pause()
        assert 0 < metrics.row_count < before
        assert all(str(metrics.get_row_at(i)[-1]) == "identity" for i in range(metrics.row_count))
        await pilot.press("e")
        await wait_for(pilot, lambda: "wrote" in str(app.screen.query_one("#export").render()))
        assert sorted(p.suffix for p in (tmp_path / "reports").iterdir()) == [".html", ".pdf"]
        await pilot.press("escape")
        assert app.screen.query_one("#runs").row_count == 2


async def test_compare_marked_runs(store, tmp_path):
    root, db, model, runs = store
    app = FaceAuditApp(db, tmp_path / "reports")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        assert "at least two" in str(app.screen.query_one("#status").render())
        await pilot.press("space", "down", "space", "c")
        assert isinstance(app.screen, CompareScreen)
        t = app.screen.query_one("#compare")
        assert t.row_count >= 2 and len(t.columns) == 3


async def test_new_audit_explains_invalid_choices_inline(store, tmp_path):
    root, db, model, runs = store
    app = FaceAuditApp(db, tmp_path / "reports", start_dir=root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, NewAuditScreen)
        await pilot.press("ctrl+s")
        assert "choose a model" in str(app.screen.query_one("#errors").render())
        # on screen at 80x24 (above the footer): the choices scroll to it (it was drawn below the screen's edge)
        assert app.screen.query_one("#errors").region.bottom <= SIZE[1] - 1
        app.screen.query_one("#model").value = str(root / "missing.onnx")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "not found" in str(app.screen.query_one("#errors").render()))
        assert isinstance(app.screen, NewAuditScreen)
    assert len(api.list_runs(db)) == 2


async def test_new_audit_runs_with_live_progress(store, small_data, tmp_path):
    root, db, model, runs = store
    db2 = tmp_path / "own.duckdb"
    app = FaceAuditApp(db2, tmp_path / "reports", start_dir=root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        screen.query_one("#model").value = str(model)
        screen.query_one("#data").value = str(small_data)
        running = await submit_clean_and_wait(pilot, app)
        assert set(running.bars) >= {"leakage", "identity"}
        await pilot.press("escape")
    runs_df = api.list_runs(db2)
    assert list(runs_df["status"]) == ["completed"]


@pytest.mark.parametrize("key", ["x", "q"])
async def test_cancel_keeps_finished_probes(store, small_data, tmp_path, key):
    """x cancels; q cancels the same way, then quits (issue 33 item 19: q exited at once and the run was stored
    'failed' with "App is not running")."""
    root, db, model, runs = store
    db2 = tmp_path / "cancel.duckdb"
    cfg = AuditConfig(model=model, data=str(small_data), conditions=["clean"], parity=False)
    app = FaceAuditApp(db2, tmp_path / "reports")
    async with app.run_test(size=SIZE) as pilot:
        screen = RunningScreen(cfg)
        await app.push_screen(screen)
        await pilot.press(key)
        await wait_for(pilot, lambda: screen.done, seconds=120)
        assert "cancelled" in str(screen.query_one("#state").render())
        assert app.return_code == (0 if key == "q" else None)  # q quits once the run has stopped
    runs_df = api.list_runs(db2)
    assert list(runs_df["status"]) == ["cancelled"]
    with Store(db2, read_only=True) as s:
        assert "App is not running" not in str(s.run(runs_df["run_id"].iloc[0])["error"])


async def test_new_audit_runs_the_opt_in_membership_probe_with_a_reference_model(store, small_data, tmp_path):
    """Membership is listed unselected (opt-in); selected alone, on a manifest with a member label, with a
    reference model typed in, it runs and the run records the reference model."""
    import pandas as pd

    root, db, model, runs = store
    m = pd.read_csv(small_data / "manifest.csv")
    m["member"] = (m["subject"].rank(method="dense") % 2).astype(int)  # 20 members, 20 non-members
    manifest = small_data / "tui-members.csv"
    m.to_csv(manifest, index=False)
    ref = make_onnx(tmp_path / "ref.onnx", seed=3)
    db2 = tmp_path / "own.duckdb"
    app = FaceAuditApp(db2, tmp_path / "reports", start_dir=root)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            screen = app.screen
            probes = screen.query_one("#probes")
            assert "membership" not in probes.selected and "identity" in probes.selected
            probes.deselect_all()
            probes.select("membership")
            screen.query_one("#model").value = str(model)
            screen.query_one("#data").value = str(manifest)
            screen.query_one("#references").value = str(ref)
            running = await submit_clean_and_wait(pilot, app)
            assert "membership" in running.bars and not {"leakage", "identity"} & set(running.bars)
    finally:
        manifest.unlink(missing_ok=True)
    with Store(db2, read_only=True) as s:
        (run_id,) = s.runs()["run_id"]
        metrics = s.metrics(run_id)
        cfg = s.run(run_id)["config"]
    assert "tightness@reference" in set(metrics["setting"]) and cfg["reference_models"] == [str(ref)]


async def test_new_audit_under_a_protocol_shows_what_it_pins_and_runs_with_it(store, small_data, tmp_path):
    """A protocol typed in the new-audit screen says under its field what it pins (a bad file: the reason, in red);
    started, the run takes the protocol's probes, conditions, seed and budgets over the screen's choices and is
    stored under the protocol, its findings from the protocol's pack only."""
    from tests.test_protocol import _write

    root, db, model, runs = store
    proto = _write(tmp_path / "p.yaml")  # identity on clean faces, seed 5, bootstrap 20, pack baseline
    db2 = tmp_path / "own.duckdb"
    app = FaceAuditApp(db2, tmp_path / "reports", start_dir=root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        screen = app.screen
        screen.query_one("#protocol").value = str(tmp_path / "missing.yaml")
        await wait_for(pilot, lambda: "no such protocol file" in str(screen.query_one("#protocol-info").render()))
        screen.query_one("#protocol").value = str(proto)
        await wait_for(pilot, lambda: "tiny-world" in str(screen.query_one("#protocol-info").render()))
        info = " ".join(str(screen.query_one("#protocol-info").render()).split())
        assert ("protocol tiny-world v2: probes identity; conditions clean; preset quick, seed 5; packs baseline. "
                "These replace") in info
        screen.query_one("#model").value = str(model)
        screen.query_one("#data").value = str(small_data)
        await pilot.press("ctrl+s")  # the screen's probes (leakage, identity, ...) and conditions are all selected
        await wait_for(pilot, lambda: isinstance(app.screen, RunningScreen))
        running = app.screen
        await wait_for(pilot, lambda: running.done, seconds=240)
        assert running.run_id and "completed" in str(running.query_one("#state").render())
        assert "identity" in running.bars and not {"leakage", "inversion", "cloak"} & set(running.bars)
    with Store(db2, read_only=True) as s:
        (run_id,) = s.runs()["run_id"]
        cfg = s.run(run_id)["config"]
        packs = set(s.findings(run_id)["pack"])
    assert cfg["protocol"]["name"] == "tiny-world" and cfg["seed"] == 5 and cfg["conditions"] == ["clean"]
    assert cfg["probes"] == ["identity"] and packs == {"baseline"}
