"""Issue 14 finding 1: any browser can send Streamlit's ``clear_cache``; the console's own state survives it.

A raw websocket client (tests/console/streamlit_ws.py) against a real ``streamlit run``: no browser needed,
which is the point (an attacker needs none either).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.conftest import _serve
from tests.console.streamlit_ws import StreamlitSocket

PASSWORD = "ws-test-password"
LOGIN_FORM = {"sidebar_login_name": "mallory", "sidebar_login_password": "guess", "Log in": True}


def _children(pid: int) -> list[str]:
    """Command lines of the direct children of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError, IndexError):
            continue
    return found


def _streamlit_pid(url: str) -> int:
    """The process serving ``url`` (started by ``_serve`` with ``--server.port``)."""
    port = url.rsplit(":", 1)[1]
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in cmdline[:3] and b"--server.port" in cmdline and port.encode() in cmdline:
            return int(entry)
    raise LookupError(f"no streamlit process serves {url}")


@pytest.fixture(scope="module")
def real_target_console(valkey_server, tmp_path_factory):
    """The console against the session's server in its own prefix, with an operator password."""
    yield from _serve({"REDIS_URL": valkey_server.connection_url, "BREAKER_KEY_PREFIX": "wsclear:",
                       "BREAKER_OPERATOR_PASSWORD": PASSWORD, "BREAKER_OPERATORS": None,
                       "BREAKER_TRUSTED_PROXIES": None}, tmp_path_factory.mktemp("ws-real"))


@pytest.fixture(scope="module")
def sandbox_console(tmp_path_factory):
    """The console as `make run` starts it: its own embedded server."""
    yield from _serve({"REDIS_URL": None, "BREAKER_KEY_PREFIX": None, "BREAKER_OPERATOR_PASSWORD": None},
                      tmp_path_factory.mktemp("ws-sandbox"))


def test_clear_cache_does_not_reset_the_login_limiter(real_target_console, valkey_server):
    """Wrong passwords with clear_cache between each: the guesser is still slowed down (the limiter is in Redis)."""
    from breaker import redis_client

    client = redis_client(valkey_server.connection_url, timeout_ms=1000)
    for key in client.scan_iter(match="wsclear:*"):
        client.delete(key)
    client.close()
    socket = StreamlitSocket(real_target_console)
    try:
        socket.rerun()
        answers = []
        for _ in range(8):
            socket.clear_cache()
            texts = socket.rerun(LOGIN_FORM)
            answers += [t for t in texts if t == "Wrong password." or t.startswith("Too many failed logins")]
    finally:
        socket.close()
    assert len(answers) == 8 and answers[0] == "Wrong password."
    assert any(a.startswith("Too many failed logins") for a in answers), answers


def test_clear_cache_starts_no_second_embedded_server(sandbox_console):
    """Three clear_cache messages and reruns: still one embedded Valkey under the console, at the same address."""
    socket = StreamlitSocket(sandbox_console)
    try:
        targets = set()
        for _ in range(3):
            texts = socket.rerun()
            targets |= {t for t in texts if "embedded redis://" in t}
            socket.clear_cache()
        targets |= {t for t in socket.rerun() if "embedded redis://" in t}
    finally:
        socket.close()
    assert len(targets) == 1, targets
    servers = [cmd for cmd in _children(_streamlit_pid(sandbox_console)) if "valkey-server" in cmd]
    assert len(servers) == 1, servers
