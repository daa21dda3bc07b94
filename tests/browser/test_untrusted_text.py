"""Issue 14 finding 5 in Chromium: stored and typed text is shown as text, never as markdown links or images."""

import re

import pytest
from playwright.sync_api import Page, expect

from breaker import redis_client
from tests.browser.conftest import KEY_PREFIX, PASSWORD
from tests.browser.test_console_browser import open_page, wait_for_run

pytestmark = pytest.mark.browser
LINK_VALUE = "[Log in again](http://127.0.0.1:9/phish)"
IMAGE_VALUE = "![x](http://127.0.0.1:9/beacon.png)"
IMAGE_NAME = "![me](http://127.0.0.1:9/name.png)"


@pytest.mark.parametrize("raw", [LINK_VALUE, IMAGE_VALUE])
def test_stored_value_in_the_zombie_warning_is_text(page: Page, console_url, valkey_server, raw):
    """A clock value holding a markdown link or image shows literally on Live and Drills: no link, no fetch."""
    client = redis_client(valkey_server.connection_url, timeout_ms=1000)
    for key in client.scan_iter(match=f"{KEY_PREFIX}*"):
        client.delete(key)
    client.set(f"{KEY_PREFIX}panic_start_ts", raw)
    fetched = []
    page.on("request", lambda request: fetched.append(request.url) if "127.0.0.1:9/" in request.url else None)
    page.goto(console_url)
    wait_for_run(page)
    for title in ("Live", "Drills"):
        open_page(page, title)
        main = page.get_by_test_id("stMain")
        expect(main.get_by_text("Zombie suspect", exact=False)).to_be_visible(timeout=30_000)
        expect(main.get_by_text(re.compile(re.escape(raw[:12])))).to_be_visible()
        assert page.locator("a[href*='127.0.0.1:9']").count() == 0
        assert page.locator("img[src*='127.0.0.1:9']").count() == 0
    assert fetched == []
    client.delete(f"{KEY_PREFIX}panic_start_ts")
    client.close()


def test_typed_login_name_is_text(page: Page, console_url, valkey_server):
    """A name typed as a markdown image shows literally in the sidebar badge; the browser fetches nothing."""
    fetched = []
    page.on("request", lambda request: fetched.append(request.url) if "127.0.0.1:9/" in request.url else None)
    page.goto(console_url)
    wait_for_run(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_label("Your name").fill(IMAGE_NAME)
    sidebar.get_by_label("Operator password").fill(PASSWORD)
    sidebar.get_by_role("button", name="Log in").click()
    expect(sidebar.get_by_text(IMAGE_NAME + " (self-declared)", exact=True)).to_be_visible(timeout=30_000)
    open_page(page, "History")
    assert page.locator("img[src*='127.0.0.1:9']").count() == 0
    assert fetched == []
