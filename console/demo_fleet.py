"""The demo fleet as a child of the console process: started on demand, stopped with the console.

The fleet runs in its own session (process group), so stopping it is one ``killpg``; the console stops
it at exit (``atexit``: Streamlit returns from its main loop on Ctrl-C and SIGTERM). Should the console
die without running atexit (SIGKILL), the fleet's conductor sees its parent change and exits, and its
workers follow their conductor the same way. Module state, not ``st.cache_resource``: a browser must not
be able to forget the fleet by clearing the cache.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from breaker.ops.target import Target

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_lock = threading.Lock()
_fleet: subprocess.Popen[bytes] | None = None
_atexit_registered = False


def fleet_running() -> bool:
    return _fleet is not None and _fleet.poll() is None


def fleet_pid() -> int | None:
    return _fleet.pid if fleet_running() and _fleet is not None else None


def start_fleet(target: Target, *, scenario: str | None = None, speed: float | None = None) -> bool:
    """Start the fleet on the console's target (playing ``scenario``, or idle); False if one runs already."""
    global _fleet, _atexit_registered
    with _lock:
        if fleet_running():
            return False
        command = [sys.executable, "-m", "breaker.ops.demo", "--sandbox", "--parent-pid", str(os.getpid())]
        command += ["--scenario", scenario] if scenario else ["--idle"]
        if speed is not None:
            command += ["--speed", repr(float(speed))]
        env = {**os.environ, "REDIS_URL": target.url, "BREAKER_KEY_PREFIX": target.settings.key_prefix}
        _fleet = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, start_new_session=True)
        if not _atexit_registered:
            atexit.register(stop_fleet)
            _atexit_registered = True
        return True


def stop_fleet(timeout_s: float = 5.0) -> None:
    """SIGTERM to the fleet's process group, SIGKILL to what is left after ``timeout_s``."""
    global _fleet
    with _lock:
        fleet, _fleet = _fleet, None
    if fleet is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(fleet.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        fleet.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(fleet.pid, signal.SIGKILL)  # workers that outlived their conductor
    with contextlib.suppress(subprocess.TimeoutExpired):
        fleet.wait(timeout=1)
