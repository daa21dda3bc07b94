"""Scheduled overrides in Chromium: planned windows on the Fleet page's timeline beside the override in force.
The screenshot goes to docs/console-schedule.png."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from breaker import PanicClock, redis_client
from breaker.ops import AuditTrail, Principal
from breaker.ops.overrides import set_override
from breaker.ops.schedule import schedule_override
from tests.browser.conftest import KEY_PREFIX
from tests.browser.test_console_browser import wait_for_run

DOCS = Path(__file__).resolve().parents[2] / "docs"
pytestmark = pytest.mark.browser


@pytest.fixture
def planned(valkey_server):
    """Three windows and an override in force under the console's prefix; all keys of the prefix removed after."""
    client = redis_client(valkey_server.connection_url, timeout_ms=1000)
    for key in client.scan_iter(match=f"{KEY_PREFIX}*"):
        client.delete(key)
    clock, trail = PanicClock(client, key_prefix=KEY_PREFIX), AuditTrail(client, key_prefix=KEY_PREFIX)
    alice, carol = Principal.of("alice", "approver"), Principal.of("carol", "approver")
    set_override(clock, trail, carol, mode="force_full", minutes=10, why="odds feed replaying")
    windows = [
        schedule_override(clock, trail, alice, mode="force_full", minutes=30, why="cup final", after_s=20 * 60),
        schedule_override(clock, trail, alice, mode="force_full", minutes=20, why="extra time", after_s=50 * 60),
        schedule_override(clock, trail, carol, mode="force_calm", minutes=45, why="feed migration",
                          after_s=100 * 60, two_person_rule=True),
    ]
    try:
        yield windows
    finally:
        for key in client.scan_iter(match=f"{KEY_PREFIX}*"):
            client.delete(key)
        client.close()


def test_the_timeline_shows_planned_windows_and_the_override_in_force(page: Page, console_url, planned):
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{console_url}/fleet")
    wait_for_run(page)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("Scheduled overrides", exact=True)).to_be_visible(timeout=30_000)
    chart = main.locator(".js-plotly-plot").filter(has_text="Planned override windows")
    expect(chart).to_be_visible(timeout=30_000)
    for window in planned:
        expect(chart).to_contain_text(window.id)
    expect(chart).to_contain_text("now")
    wait_for_run(page)
    chart.scroll_into_view_if_needed()
    chart.screenshot(path=str(DOCS / "console-schedule.png"))
