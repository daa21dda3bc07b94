"""The console in Chromium: log in, start a back-dated panic on Drills, see its tiers on Live, visit every page."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from breaker import redis_client
from tests.browser.conftest import KEY_PREFIX, PASSWORD

DOCS = Path(__file__).resolve().parents[2] / "docs"  # the screenshots docs/console.md shows
pytestmark = pytest.mark.browser


def wait_for_run(page: Page) -> None:
    """Wait until the app is connected and its script (not a fragment tick) has finished."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=30_000)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=30_000)


def open_page(page: Page, title: str) -> None:
    page.get_by_role("link", name=title, exact=True).first.click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=30_000)
    wait_for_run(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)


def shoot(page: Page, name: str) -> None:
    page.screenshot(path=str(DOCS / f"console-{name}.png"), full_page=True)


def test_backdated_drill_shows_on_live_and_every_page_renders(page: Page, console_url, valkey_server):
    """Login, a drill 46 min back from Drills, Live shows PANIC_FULL/PANIC_PARTIAL/DEGRADED; all pages render."""
    client = redis_client(valkey_server.connection_url, timeout_ms=1000)
    for key in client.scan_iter(match=f"{KEY_PREFIX}*"):
        client.delete(key)
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(console_url)
    wait_for_run(page)
    expect(page.get_by_role("heading", name="Live", exact=True)).to_be_visible(timeout=30_000)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("read-only")).to_be_visible()
    sidebar.get_by_label("Your name").fill("playwright")
    sidebar.get_by_label("Operator password").fill(PASSWORD)
    sidebar.get_by_role("button", name="Log in").click()
    expect(sidebar.get_by_text("playwright (self-declared)")).to_be_visible(timeout=30_000)

    open_page(page, "Drills")
    back = page.get_by_label("Back-date start by (min)")
    back.fill("46")
    back.press("Enter")
    wait_for_run(page)
    page.get_by_label("Why (goes into the audit trail)").fill("browser drill")
    page.get_by_label("Why (goes into the audit trail)").press("Enter")
    wait_for_run(page)
    page.get_by_role("button", name="Start panic").click()
    expect(page.get_by_text("fleet tier 3")).to_be_visible(timeout=30_000)
    wait_for_run(page)
    shoot(page, "drills")
    assert client.exists(f"{KEY_PREFIX}panic_start_ts")

    open_page(page, "Live")
    main = page.get_by_test_id("stMain")
    for mode in ("PANIC_FULL", "PANIC_PARTIAL", "DEGRADED"):
        expect(main.get_by_text(mode, exact=True)).to_be_visible(timeout=30_000)
    expect(main.get_by_text("Tier 3: REVIEW_MARKET_CONDITIONS", exact=False)).to_be_visible()
    shoot(page, "live")

    open_page(page, "Tiers")
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    shoot(page, "tiers")

    open_page(page, "History")
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("panic_start").first).to_be_attached()  # grid cells are drawn on a canvas
    expect(page.get_by_text("Panic episodes")).to_be_visible()
    shoot(page, "history")
    client.close()


def test_sandbox_console_renders_every_page(page: Page, sandbox_url):
    """Without REDIS_URL the console runs on its embedded server: a first request deep-linked to Drills shows the
    six pages (not every file of pages/), says sandbox with writes open, and every page renders."""
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{sandbox_url}/drills")
    wait_for_run(page)
    expect(page.get_by_role("heading", name="Drills", exact=True)).to_be_visible(timeout=30_000)
    nav = page.get_by_test_id("stSidebarNav").get_by_role("link")
    titles = ("Live", "Fleet", "Drills", "Tiers", "History", "Demo")
    expect(nav).to_have_text([re.compile(f"{title}$") for title in titles])
    expect(page.get_by_test_id("stSidebar").get_by_text("sandbox: writes open")).to_be_visible()
    expect(page.get_by_text("Sandbox: the console runs on its own embedded server")).to_be_visible()
    expect(page.get_by_role("button", name="Start panic")).to_be_enabled()
    for title in ("Live", "Tiers", "History"):
        open_page(page, title)
    expect(page.get_by_text("No history yet")).to_be_visible()


def test_force_clear_dialog_closes_for_good(page: Page, console_url, valkey_server):
    """The force-clear dialog: a short reason keeps Cancel, Esc closes it and a later click does not bring it
    back; a real reason clears the (fed, so not zombie) clock."""
    client = redis_client(valkey_server.connection_url, timeout_ms=1000)
    for key in client.scan_iter(match=f"{KEY_PREFIX}*"):
        client.delete(key)
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{console_url}/drills")
    wait_for_run(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_label("Your name").fill("playwright")
    sidebar.get_by_label("Operator password").fill(PASSWORD)
    sidebar.get_by_role("button", name="Log in").click()
    expect(sidebar.get_by_text("playwright (self-declared)")).to_be_visible(timeout=30_000)
    wait_for_run(page)
    expect(page.get_by_text("workers act on them.")).to_be_visible()
    page.get_by_role("button", name="Start panic").click()
    expect(page.get_by_text("Panic started")).to_be_visible(timeout=30_000)
    wait_for_run(page)

    dialog = page.get_by_role("dialog")
    page.get_by_role("button", name="Force-clear the clock…").click()
    expect(dialog).to_be_visible(timeout=30_000)
    dialog.get_by_label("Reason").fill("short")
    dialog.get_by_label("Reason").press("Enter")
    dialog.get_by_role("button", name="Clear the clock").click()
    expect(dialog.get_by_text("The reason needs at least 10 characters.")).to_be_visible(timeout=30_000)
    expect(dialog.get_by_role("button", name="Cancel")).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0, timeout=30_000)
    page.get_by_role("button", name="Run fail-safe drill").click()
    expect(page.get_by_text("answers were (0, PANIC_FULL)")).to_be_visible(timeout=30_000)
    wait_for_run(page)
    expect(dialog).to_have_count(0)
    assert client.exists(f"{KEY_PREFIX}panic_start_ts")

    page.get_by_role("button", name="Force-clear the clock…").click()
    expect(dialog).to_be_visible(timeout=30_000)
    dialog.get_by_label("Reason").fill("browser test cleaning up")
    dialog.get_by_label("Reason").press("Enter")
    dialog.get_by_role("button", name="Clear the clock").click()
    expect(page.get_by_text("Panic clock cleared.")).to_be_visible(timeout=30_000)
    expect(dialog).to_have_count(0)
    assert not client.exists(f"{KEY_PREFIX}panic_start_ts")
    client.close()
