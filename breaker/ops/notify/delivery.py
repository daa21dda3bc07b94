"""One POST with a bound on its whole duration, and the retry schedule around it.

A socket timeout bounds each read, not a reply: a receiver that trickles a byte a second would hold a try
for ever. A watchdog timer shuts the socket down at the try's deadline, which ends any blocked connect,
send or read at once. Every answer but a 2xx is a failed try (3xx are not followed, 4xx are retried like
5xx: a receiver's misconfiguration fixed within the retry window still gets its events).
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class TryOutcome:
    ok: bool
    status: int | None
    error: str  # "" when ok
    seconds: float


@dataclass(frozen=True)
class RetryPolicy:
    """``tries`` in all; the wait before try n+1 is ``min(cap, base * 2**(n-1))`` scaled by full jitter
    (a uniform draw in [1 - jitter, 1]), so receivers that come back are not hit by every sender at once."""

    tries: int = 8
    base_s: float = 1.0
    cap_s: float = 60.0
    jitter: float = 0.5
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.tries < 1 or self.base_s < 0 or self.cap_s < 0 or not 0 <= self.jitter <= 1 or self.timeout_s <= 0:
            raise ValueError(f"unusable retry policy {self!r}")

    def delay_s(self, failed_tries: int, rng: random.Random | None = None) -> float:
        """The wait after ``failed_tries`` failures (1 = after the first)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (failed_tries - 1))
        draw = (rng or random).uniform(1.0 - self.jitter, 1.0)
        return ceiling * draw

    def worst_case_s(self) -> float:
        """The longest one event can take to be delivered or dead-lettered at one target."""
        return self.tries * self.timeout_s + sum(min(self.cap_s, self.base_s * 2 ** (n - 1))
                                                 for n in range(1, self.tries))


def post_once(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> TryOutcome:
    """POST ``body``; connect, send and the whole response together take at most ``timeout_s``."""
    began = time.monotonic()
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout_s, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout_s, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("POST", path, body=body, headers={**headers, "user-agent": "vix-breaker-notify"})
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        status = response.status
    except http.client.InvalidURL:  # its message repeats the path, which is a Slack URL's secret part
        return TryOutcome(False, None, "InvalidURL: http.client refused the URL's path", time.monotonic() - began)
    except (OSError, http.client.HTTPException) as exc:
        seconds = time.monotonic() - began
        if expired.is_set():
            return TryOutcome(False, None, f"no complete answer within {timeout_s:g} s", seconds)
        return TryOutcome(False, None, f"{type(exc).__name__}: {exc}"[:300], seconds)
    finally:
        watchdog.cancel()
        conn.close()
    seconds = time.monotonic() - began
    if expired.is_set():
        return TryOutcome(False, status, f"no complete answer within {timeout_s:g} s", seconds)
    if 200 <= status < 300:
        return TryOutcome(True, status, "", seconds)
    return TryOutcome(False, status, f"HTTP {status}", seconds)
