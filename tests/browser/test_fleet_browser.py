"""Fleet and overrides in Chromium: real worker processes heartbeat, the Fleet page shows them, an override set from
the page is honoured by them and shown on every page. Screenshots go to docs/ (console-fleet.png, console-override.png).
"""

import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from breaker import redis_client
from tests.browser.conftest import KEY_PREFIX, PASSWORD, ROOT
from tests.browser.test_console_browser import open_page, wait_for_run

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("Live", "Fleet", "Drills", "Tiers", "History", "Demo")
pytestmark = pytest.mark.browser


@pytest.fixture
def reporting_workers(valkey_server):
    """Three worker processes (two in panic, one calm) calling get_ttl in a loop; stopped at teardown."""
    client = redis_client(valkey_server.connection_url, timeout_ms=1000)
    for key in client.scan_iter(match=f"{KEY_PREFIX}*"):
        client.delete(key)
    processes = [
        subprocess.Popen([sys.executable, "-m", "tests.browser.fleet_worker", valkey_server.connection_url,
                          KEY_PREFIX, status], cwd=ROOT)
        for status in ("panic", "panic", "normal")
    ]
    try:
        yield client
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for key in client.scan_iter(match=f"{KEY_PREFIX}*"):
            client.delete(key)
        client.close()


def test_fleet_with_real_workers_and_an_override_on_every_page(page: Page, console_url, reporting_workers):
    """Three real workers show on Fleet; force_full set from Fleet is honoured by all three (per their heartbeats)
    and its banner, with who and why, is on every page; clearing it removes the banner."""
    page.set_viewport_size({"width": 1440, "height": 1800})  # tall: the screenshots show the table
    page.goto(f"{console_url}/fleet")
    wait_for_run(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_label("Your name").fill("playwright")
    sidebar.get_by_label("Operator password").fill(PASSWORD)
    sidebar.get_by_role("button", name="Log in").click()
    expect(sidebar.get_by_text("playwright (self-declared)")).to_be_visible(timeout=30_000)
    wait_for_run(page)
    main = page.get_by_test_id("stMain")
    workers = main.get_by_test_id("stMetric").filter(has_text="Workers")
    expect(workers.get_by_test_id("stMetricValue")).to_have_text("3", timeout=30_000)  # the 3 s refresh
    expect(main.get_by_test_id("stMetric").filter(has_text="Panic").get_by_test_id("stMetricValue")).to_have_text("2")
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    wait_for_run(page)
    page.screenshot(path=str(DOCS / "console-fleet.png"), full_page=True)

    why = main.get_by_label("Why (required, goes into the audit trail)")
    why.fill("browser test: pin the fleet")
    why.press("Enter")
    wait_for_run(page)
    main.get_by_role("button", name="Set force_full").click()
    expect(main.get_by_text("Override force_full set for 15 min")).to_be_visible(timeout=30_000)
    banner = main.get_by_test_id("stAlert").filter(has_text="is on")
    expect(banner).to_contain_text("force_full", timeout=30_000)
    expect(banner).to_contain_text("3 of 3 reporting workers already honour it", timeout=30_000)  # 5 s refresh
    expect(main.get_by_text("why: browser test: pin the fleet")).to_be_visible()
    wait_for_run(page)
    page.screenshot(path=str(DOCS / "console-override.png"), full_page=True)

    for title in PAGES:
        open_page(page, title)
        expect(main.get_by_test_id("stAlert").filter(has_text="Override force_full is on")).to_be_visible(
            timeout=30_000)
        expect(main.get_by_text("by: playwright")).to_be_visible()

    open_page(page, "Fleet")
    change_why = main.get_by_label("Why (required)", exact=True)
    change_why.fill("browser test done")
    change_why.press("Enter")
    wait_for_run(page)
    main.get_by_role("button", name="Clear override").click()
    expect(main.get_by_text("Override cleared")).to_be_visible(timeout=30_000)
    expect(main.get_by_test_id("stAlert").filter(has_text="is on")).to_have_count(0)
    assert not reporting_workers.exists(f"{KEY_PREFIX}panic_override")
