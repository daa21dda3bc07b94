"""Ctrl-C on `make demo`: the terminal sends SIGINT to the console's whole process group; the console, its
fleet and its embedded server end without a traceback or DEMO_CLEANUP_FAILED, leaving no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.console.streamlit_ws import StreamlitSocket

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        for child in _children_of(todo.pop()):
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_on_make_demo_ends_cleanly(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "BREAKER_"))}
    env["BREAKER_DEMO"] = "tour"
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:  # its own process group, as a terminal's foreground job (make demo's command)
        console = subprocess.Popen(
            [sys.executable, "-m", "console", "--server.headless", "true", "--server.port", str(port),
             "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert console.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)  # polling a starting server
        session = StreamlitSocket(f"http://127.0.0.1:{port}")
        try:
            session.rerun()  # the first page view starts the fleet on the embedded server
        finally:
            session.close()
        while len(_descendants(console.pid)) < 4:  # the server, the conductor and its worker processes
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(0.3)  # let the workers write a little: a short pause, no simulated time depends on it
        seen = _descendants(console.pid)
        os.killpg(console.pid, signal.SIGINT)  # Ctrl-C
        console.wait(timeout=30)
    finally:
        if console.poll() is None:
            os.killpg(console.pid, signal.SIGKILL)
            console.wait()
    text = log.read_text()
    assert "Traceback" not in text and "DEMO_CLEANUP_FAILED" not in text, text
    gone_deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in seen) and time.monotonic() < gone_deadline:
        time.sleep(0.1)
    assert not [pid for pid in seen if _alive(pid)], text
