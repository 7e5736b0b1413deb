"""The HTML report on screen, checked in a real headless Chromium (Debian's `chromium` package, driven by
playwright): it renders without console or page errors and fetches nothing, the filters hide and show rows (and
without JavaScript every row shows), the contents stay in view while scrolling, figures are not shrunk below
their drawn size. Screenshots go to the test's tmp_path (printed)."""

import os
import shutil

import pytest

from audit import api

pytestmark = pytest.mark.slow
VIEWPORT = {"width": 1400, "height": 900}
# The machine may have no network: everything that would reach out is off.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(why: str):
    if _in_ci():  # CI must not go green without the browser check
        pytest.fail(f"CI: {why}; .ci/run installs Debian's chromium and the dev extra installs playwright")
    pytest.skip(f"{why} (CI installs it and runs this test)")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system chromium's path (the tests ask for it before the audit fixture, so a skip costs nothing)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        _unavailable("chromium is not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    return exe


@pytest.fixture
def open_page(chromium, tmp_path):
    """open_page(path, javascript=True) -> (page, problems): a fresh Chromium profile per page; ``problems``
    collects console errors, page errors and every request that is not a file: or data: URL."""
    from playwright.sync_api import sync_playwright

    exe = chromium
    pw = sync_playwright().start()
    contexts = []

    def open_(path, javascript=True):
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{len(contexts)}"), executable_path=exe, args=ARGS, headless=True,
            viewport=VIEWPORT, java_script_enabled=javascript, offline=True)
        contexts.append(ctx)
        page = ctx.new_page()
        problems = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("request", lambda r: problems.append(f"request: {r.url}")
                if not r.url.startswith(("file:", "data:")) else None)
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        return page, problems

    yield open_
    for ctx in contexts:
        ctx.close()
    pw.stop()


def _shot(page, tmp_path, name):
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path)
    print(f"screenshot: {path}")


def _visible(page, table):
    return [r for r in page.locator(f"#{table} tbody tr").all() if r.is_visible()]


def _filter(page, table, key, value):
    page.locator(f'#{table}-filters button[data-filter="{key}"][data-value="{value}"]').click()


def test_run_report_filters_and_contents_in_a_real_browser(chromium, every_probe, open_page, tmp_path):
    db, run_id, _ = every_probe
    html = api.build_report(run_id, db, tmp_path / "out", ["html"])[0]
    page, problems = open_page(html)
    _shot(page, tmp_path, "report-top")
    rows = page.locator("#findings-table tbody tr")
    statuses = rows.evaluate_all("rs => rs.map(r => [r.dataset.status, r.dataset.probe])")
    assert len({s for s, _ in statuses}) >= 2 and len({p for _, p in statuses}) >= 2, statuses
    assert len(_visible(page, "findings-table")) == len(statuses)
    status = statuses[0][0]  # the worst status present (findings are sorted fail first)
    _filter(page, "findings-table", "status", status)
    shown = _visible(page, "findings-table")
    assert len(shown) == sum(s == status for s, _ in statuses) < len(statuses)
    assert all(r.get_attribute("data-status") == status for r in shown)
    probe = next(p for s, p in statuses if s == status)
    _filter(page, "findings-table", "probe", probe)
    shown = _visible(page, "findings-table")
    assert len(shown) == sum(s == status and p == probe for s, p in statuses) >= 1
    assert page.locator("#findings-table-filters .shown").inner_text() == f"{len(shown)} of {len(statuses)} rows shown"
    page.locator("#findings-table").scroll_into_view_if_needed()
    _shot(page, tmp_path, "report-filtered")
    _filter(page, "findings-table", "status", "")
    _filter(page, "findings-table", "probe", "")
    assert len(_visible(page, "findings-table")) == len(statuses)
    # the contents stay in view: at the end of the report, and after following a link
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    box = page.locator("nav.toc").bounding_box()
    assert page.locator("nav.toc").is_visible() and 0 <= box["y"] < VIEWPORT["height"] / 2, box
    page.locator('nav.toc a[href="#cloak"]').click()
    # (a fraction of a pixel above the top is still in view: fractional line heights round the anchor's scroll)
    assert -1 < page.locator("#cloak h2").bounding_box()["y"] < VIEWPORT["height"] / 2
    assert 0 <= page.locator("nav.toc").bounding_box()["y"] < VIEWPORT["height"] / 2
    _shot(page, tmp_path, "report-scrolled")
    # figures at 100% zoom: none shown smaller than 85% of its drawn size (text stays at least ~7 pt)
    scales = page.locator("figure svg").evaluate_all(
        "ss => ss.map(s => s.getBoundingClientRect().width / s.width.baseVal.value)")
    assert scales and min(scales) >= 0.85, scales
    assert problems == []


def test_without_javascript_every_row_shows(chromium, every_probe, open_page, tmp_path):
    db, run_id, _ = every_probe
    html = api.build_report(run_id, db, tmp_path / "out", ["html"])[0]
    page, problems = open_page(html, javascript=False)
    assert page.locator(".filters").count() == 0
    total = page.locator("#findings-table tbody tr").count()
    assert total > 0 and len(_visible(page, "findings-table")) == total
    assert problems == []


def test_comparison_filters_in_a_real_browser(chromium, every_probe, open_page, tmp_path):
    db, a, b = every_probe
    html = api.compare([a, b], db, tmp_path / "out", ["html"])[0]
    page, problems = open_page(html)
    _shot(page, tmp_path, "comparison-top")
    rows = page.locator("#paired-table tbody tr").evaluate_all(
        "rs => rs.map(r => [r.dataset.status, r.dataset.probe])")
    assert len(_visible(page, "paired-table")) == len(rows) > 0
    assert len({s for s, _ in rows}) >= 2 and len({p for _, p in rows}) >= 2, rows
    status = max({s for s, _ in rows}, key=[s for s, _ in rows].count)  # e.g. "cannot be told apart"
    _filter(page, "paired-table", "status", status)
    assert len(_visible(page, "paired-table")) == sum(s == status for s, _ in rows) < len(rows)
    probe = next(p for s, p in rows if s == status)
    _filter(page, "paired-table", "probe", probe)
    assert len(_visible(page, "paired-table")) == sum(r == [status, probe] for r in rows) >= 1
    page.locator("#paired-table").scroll_into_view_if_needed()
    _shot(page, tmp_path, "comparison-filtered")
    assert 0 <= page.locator("nav.toc").bounding_box()["y"] < VIEWPORT["height"] / 2
    assert problems == []
