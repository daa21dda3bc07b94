"""A newcomer's first hour in Chromium: the console renders with the internet blocked, a phone's sidebar closes
after navigation and the sandbox shows on the page, "Wrong password" appears beside the button.
Screenshots (wide and phone) go to docs/."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_console_browser import wait_for_run

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("Live", "Fleet", "Drills", "Tiers", "History", "Demo")
PHONE = {"width": 390, "height": 844}
pytestmark = pytest.mark.browser


def block_the_internet(page: Page) -> list[str]:
    """Abort every request that leaves the machine; return the list they are recorded in."""
    outside: list[str] = []

    def route(route, request):
        host = urlsplit(request.url).hostname or ""
        if request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            outside.append(request.url)
            route.abort()

    page.route("**/*", route)
    return outside


def test_every_page_renders_with_the_internet_blocked(page: Page, sandbox_url):
    """Fonts, icons and the favicon come from the console itself: no request leaves loopback on any page."""
    outside = block_the_internet(page)
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(sandbox_url)
    wait_for_run(page)
    for title in PAGES:
        page.get_by_role("link", name=title, exact=True).first.click()
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=30_000)
        wait_for_run(page)
    page.get_by_role("link", name="Live", exact=True).first.click()
    wait_for_run(page)
    page.wait_for_timeout(500)  # late font and icon requests of the last page: a browser's own time, not a clock
    page.screenshot(path=str(DOCS / "console-live-wide.png"), full_page=True)
    assert outside == [], "\n".join(outside)


PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Mobile Safari/537.36")


@pytest.fixture
def phone(browser):
    """A phone: its viewport, touch, and a phone's user agent (Streamlit closes the sidebar on a mobile device)."""
    context = browser.new_context(viewport=PHONE, user_agent=PHONE_UA, is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


def test_phone_sidebar_closes_after_navigation_and_the_sandbox_shows_on_the_page(phone: Page, sandbox_url):
    page = phone
    page.goto(sandbox_url)
    wait_for_run(page)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("Sandbox", exact=False).first).to_be_in_viewport(timeout=30_000)
    sidebar = page.get_by_test_id("stSidebar")
    if sidebar.get_attribute("data-collapsed") == "true":
        page.get_by_test_id("stExpandSidebarButton").click()
    expect(sidebar).to_have_attribute("data-collapsed", "false")
    sidebar.get_by_role("link", name="History", exact=True).click()
    expect(page.get_by_role("heading", name="History", exact=True)).to_be_visible(timeout=30_000)
    wait_for_run(page)
    expect(sidebar).to_have_attribute("data-collapsed", "true", timeout=10_000)
    expect(main.get_by_text("Sandbox", exact=False).first).to_be_in_viewport()
    page.screenshot(path=str(DOCS / "console-history-phone.png"), full_page=False)


def _wrong_password(page: Page, console_url: str) -> tuple[dict, dict]:
    page.goto(console_url)
    wait_for_run(page)
    sidebar = page.get_by_test_id("stSidebar")
    if sidebar.get_attribute("data-collapsed") == "true":
        page.get_by_test_id("stExpandSidebarButton").click()
    sidebar.get_by_label("Your name").fill("newcomer")
    sidebar.get_by_label("Operator password").fill("not the password")
    button = sidebar.get_by_role("button", name="Log in")
    button.click()
    wait_for_run(page)
    message = sidebar.get_by_text("Wrong password", exact=False)
    expect(message).to_be_in_viewport(timeout=30_000)
    return message.bounding_box(), button.bounding_box()


def test_wrong_password_shows_beside_the_login_button(page: Page, console_url):
    """On a laptop screen (1280×720) the refusal is in view, next to the button the operator just pressed."""
    page.set_viewport_size({"width": 1280, "height": 720})
    near, box = _wrong_password(page, console_url)
    assert abs(near["y"] - box["y"]) < 160, (near, box)
    page.screenshot(path=str(DOCS / "console-wrong-password.png"))


def test_wrong_password_on_a_phone(phone: Page, console_url):
    near, box = _wrong_password(phone, console_url)
    assert abs(near["y"] - box["y"]) < 160, (near, box)


def test_the_demo_minute_on_live_follows_the_demo_page(page: Page, console_url, valkey_server):
    """The demo banner refreshes as the Demo page's panel does: a page left open shows the scenario minute the
    Demo page shows, not the one of the moment it was loaded."""
    from breaker import redis_client
    from breaker.ops.demo.marker import DemoMarker
    from tests.browser.conftest import KEY_PREFIX

    client = redis_client(valkey_server.connection_url, timeout_ms=1000)
    marker = DemoMarker(scenario="tour", title="Tour", speed=120.0, state="playing", started=1.0, pid=1, run="r1",
                        minute=87.0, total_minutes=392.0, phase="long panic", workers=64)
    client.hset(f"{KEY_PREFIX}demo", mapping=marker.fields())
    try:
        page.set_viewport_size({"width": 1440, "height": 1000})
        page.goto(console_url)
        wait_for_run(page)
        expect(page.get_by_text("scenario minute 87 of 392", exact=False).first).to_be_visible(timeout=30_000)
        client.hset(f"{KEY_PREFIX}demo", "minute", "91.0")  # the conductor moved on; nobody reloads the page
        expect(page.get_by_text("scenario minute 91 of 392", exact=False).first).to_be_visible(timeout=15_000)
    finally:
        client.delete(f"{KEY_PREFIX}demo")
        client.close()
