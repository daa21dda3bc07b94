"""A real HTTP receiver on loopback for the notifier's tests: records every POST, answers a chosen status,
can hang, can be stopped and started again on the same port (an outage)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebhookReceiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.status = 200
        self.delay_s = 0.0  # answer this long after reading the body (a slow receiver)
        self.hang = threading.Event()  # set: requests wait until ``release`` is set (a hung receiver)
        self.release = threading.Event()
        self.hung_requests = 0
        self.arrived = 0  # POSTs whose body was read, before any delay or hang (a request in flight)
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.arrived += 1
                if receiver.hang.is_set():
                    with receiver._lock:
                        receiver.hung_requests += 1
                    receiver.release.wait(30)
                    return
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                status = receiver.status
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body,
                                                          time.time()))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> set[str]:
        with self._lock:
            return {r.webhook_id for r in self.received}


def wait_for(condition, timeout_s: float = 30.0, what: str = "condition"):
    """Poll ``condition`` with short sleeps until it is truthy (returned) or the deadline passes (AssertionError)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
