"""`make demo` in Chromium: the console plus its simulated fleet on the embedded server, from a cold start.

Within a minute the Fleet page shows the workers, Live a panic, and Demo's backend-load chart moves; the
screenshots go to docs/ (demo-fleet.png, demo-live.png, demo-load.png). Stopping the console stops the fleet.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ROOT, _chromium_or_fail, _free_port, _wait_healthy
from tests.browser.test_console_browser import open_page, wait_for_run

DOCS = ROOT / "docs"
MINUTE_MS = 60_000
pytestmark = pytest.mark.browser


def _demo_processes(console_pid: int) -> list[int]:
    """Live processes of the demo fleet started by ``console_pid`` (the conductor names its parent; workers
    name the conductor)."""
    conductors, found = set(), []
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                table[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
    for pid, cmdline in table.items():
        if "breaker.ops.demo" in cmdline and f"--parent-pid {console_pid}" in cmdline:
            conductors.add(pid)
            found.append(pid)
    for pid, cmdline in table.items():
        if "breaker.ops.demo.worker" in cmdline and any(f"--parent-pid {c}" in cmdline for c in conductors):
            found.append(pid)
    return found


@pytest.fixture(scope="module")
def demo_console(tmp_path_factory):
    """`make demo`: no REDIS_URL, BREAKER_DEMO=tour; yields (url, streamlit process)."""
    _chromium_or_fail()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BREAKER_KEY_PREFIX",
                                                           "BREAKER_OPERATOR_PASSWORD")}
    env["BREAKER_DEMO"] = "tour"
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit-demo") / "streamlit.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C on `make demo`
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _metric_value(page: Page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(
        label, exact=True))
    return metric.get_by_test_id("stMetricValue").inner_text()


def test_make_demo_shows_a_living_fleet_and_leaves_nothing_behind(page: Page, demo_console):
    """From a cold start: Fleet counts the 64 simulated workers, Live shows a panic tier, Demo's load chart gains
    points; stopping the console (Ctrl-C) stops the conductor and every worker process."""
    url, console = demo_console
    began = time.monotonic()
    page.set_viewport_size({"width": 1440, "height": 1400})
    page.goto(f"{url}/fleet")  # the first page view starts the fleet
    wait_for_run(page)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stMetricLabel").get_by_text("Workers", exact=True)).to_be_visible(timeout=MINUTE_MS)
    expect(page.get_by_test_id("stMetric").filter(has_text=re.compile(r"^Workers\s*64$"))).to_be_visible(
        timeout=MINUTE_MS)
    page.reload()  # the banner is drawn on full runs (the Fleet panel refreshes itself): the fleet now plays
    wait_for_run(page)
    expect(main.get_by_text(re.compile("Demo playing"))).to_be_visible(timeout=MINUTE_MS)
    expect(page.get_by_test_id("stMetric").filter(has_text=re.compile(r"^Workers\s*64$"))).to_be_visible(
        timeout=MINUTE_MS)
    page.screenshot(path=str(DOCS / "demo-fleet.png"), full_page=True)

    open_page(page, "Live")
    expect(main.get_by_text(re.compile("^PANIC_(FULL|PARTIAL)$")).first).to_be_visible(timeout=MINUTE_MS)
    page.screenshot(path=str(DOCS / "demo-live.png"), full_page=True)
    assert time.monotonic() - began < 120  # workers and a panic well within the minute the issue asks (+ start)

    open_page(page, "Demo")
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=MINUTE_MS)
    points = page.get_by_text(re.compile(r"^\d+ points, one per second"))
    expect(points).to_be_visible(timeout=MINUTE_MS)
    first = int(points.inner_text().split()[0])
    expect(points).not_to_have_text(re.compile(rf"^{first} points"), timeout=MINUTE_MS)  # the chart moves
    assert float(_metric_value(page, "get_ttl answers/s").replace(",", "")) > 0
    # 18 s into the tour, low stakes have left tier 1: the screenshot shows ours falling below the seed's line
    expect(points).to_have_text(re.compile(r"^(1[8-9]|[2-9]\d|\d{3,}) points"), timeout=MINUTE_MS)
    page.screenshot(path=str(DOCS / "demo-load.png"), full_page=True)

    assert _demo_processes(console.pid), "the fleet should be running under the console"
    console.send_signal(signal.SIGINT)
    console.wait(timeout=30)
    deadline = time.monotonic() + 15
    while _demo_processes(console.pid) and time.monotonic() < deadline:
        time.sleep(0.2)  # the fleet's processes are exiting, not simulated time
    assert _demo_processes(console.pid) == []
