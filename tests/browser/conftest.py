"""A real `streamlit run` of the console on a free port, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "browser-test-password"
KEY_PREFIX = "browser:"


def _chromium_or_fail() -> str:
    """Fail loudly in CI (a skipped browser test would hide a broken console); skip only on a dev machine."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = (f"Chromium not found at {CHROMIUM}: run `make chromium` (installs Debian's chromium as root) "
               "or set CHROMIUM=/path/to/chromium")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": _chromium_or_fail(),
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)  # polling a starting server, not waiting for simulated time
    raise RuntimeError(f"streamlit at {url} not healthy after {timeout_s:.0f} s")


def _serve(env_overrides: dict[str, str | None], log_dir: Path):
    """Start `streamlit run app.py` on a free port with the given environment; yield its URL; stop it."""
    port = _free_port()
    env = {**os.environ}
    for name, value in env_overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    with open(log_dir / "streamlit.log", "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()  # streamlit stops its embedded server (if any) on SIGTERM
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def console_url(valkey_server, tmp_path_factory):
    """The console against the session's test server (REDIS_URL) in its own key prefix."""
    _chromium_or_fail()
    yield from _serve({"REDIS_URL": valkey_server.connection_url, "BREAKER_KEY_PREFIX": KEY_PREFIX,
                       "BREAKER_OPERATOR_PASSWORD": PASSWORD}, tmp_path_factory.mktemp("streamlit"))


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory):
    """The console as `make run` starts it: no REDIS_URL, its own embedded server."""
    _chromium_or_fail()
    yield from _serve({"REDIS_URL": None, "BREAKER_KEY_PREFIX": None, "BREAKER_OPERATOR_PASSWORD": None},
                      tmp_path_factory.mktemp("streamlit-sandbox"))
