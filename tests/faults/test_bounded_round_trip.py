"""A round trip is bounded as a whole: a reply trickled byte by byte, or a 64 MB value at a key, cannot hold a
call past the client's timeout (plus a few ms). The trickling proxy lives in this file, on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from structlog.testing import capture_logs

from breaker import VIXCircuitBreaker, redis_client

from .conftest import timed_call

TIMEOUT_MS = 50
SLACK_MS = 20
KEY = "brain:panic_start_ts"


class TrickleProxy:
    """Loopback TCP proxy to ``upstream``: requests pass at once; replies pass at once until ``trickle`` is set,
    then one byte every ``byte_every_s``, as a sick server or proxy would send them."""

    def __init__(self, upstream_port: int, byte_every_s: float = 0.01) -> None:
        self.upstream_port = upstream_port
        self.byte_every_s = byte_every_s
        self.trickle = threading.Event()
        self.closing = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, reply: bool) -> None:
        with contextlib.suppress(OSError):
            while not self.closing.is_set():
                data = source.recv(65536)
                if not data:
                    return
                if reply and self.trickle.is_set():
                    for i in range(len(data)):
                        if self.closing.is_set():
                            return
                        sink.sendall(data[i : i + 1])
                        time.sleep(self.byte_every_s)
                else:
                    sink.sendall(data)

    def close(self) -> None:
        self.closing.set()
        for sock in [self.listener, *self.sockets]:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def proxy(valkey_server, real_redis):
    proxy = TrickleProxy(valkey_server.port)
    yield proxy
    proxy.close()


def test_a_trickled_reply_is_cut_at_the_deadline(proxy, real_redis, fake_clock):
    """Replies trickled a byte every 10 ms (each read within the 50 ms timeout): the call still answers
    fail-safe after at most timeout + 20 ms of blocked time, and the next call waits for retry_after_s."""
    real_redis.set(KEY, repr(real_redis.time()[0] - 20 * 60), ex=900)
    client = redis_client(f"redis://127.0.0.1:{proxy.port}/0", timeout_ms=TIMEOUT_MS)
    breaker = VIXCircuitBreaker(client, clock=fake_clock, refresh_interval_s=1.0)
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")  # the pool holds a connection
    proxy.trickle.set()
    fake_clock.advance(1.0)
    with capture_logs() as logs:
        call = timed_call(breaker.get_ttl, 60, "panic", {"stakes": "low"})
        after = timed_call(breaker.get_ttl, 60, "panic", {"stakes": "low"})
        fake_clock.advance(1.0)
        reconnecting = timed_call(breaker.get_ttl, 60, "panic", {"stakes": "low"})  # a new connection's handshake
    assert call.answer == after.answer == reconnecting.answer == (0, "PANIC_FULL")
    assert call.blocked_ms <= TIMEOUT_MS + SLACK_MS, f"blocked {call.blocked_ms:.1f} ms"
    assert reconnecting.blocked_ms <= TIMEOUT_MS + SLACK_MS, f"blocked {reconnecting.blocked_ms:.1f} ms"
    assert after.blocked_ms < 5, "backing off: no second wait"
    [error] = [e for e in logs if e["event"] == "REDIS_UNAVAILABLE"]
    assert "deadline" in error["error"]


def test_a_64_mb_value_at_the_key_costs_no_more_than_a_short_one(real_redis, redis_url, fake_clock):
    """64 MB at the clock key and at the override key: read at most a few KB, replaced and ignored, no wait."""
    real_redis.set(KEY, b"1" * (64 << 20))
    real_redis.set("brain:panic_override", b"x" * (64 << 20))
    breaker = VIXCircuitBreaker(redis_client(redis_url, timeout_ms=TIMEOUT_MS), clock=fake_clock, retry_after_s=0)
    with capture_logs() as logs:
        call = timed_call(breaker.get_ttl, 60, "panic")
        for _ in range(20):  # on a loaded machine a round trip may miss its 50 ms budget (the server frees 64 MB)
            if breaker.last_error is None and real_redis.strlen(KEY) < 32:
                break
            fake_clock.advance(1.0)
            breaker.get_ttl(60, "panic")
    assert call.answer == (0, "PANIC_FULL")
    assert call.blocked_ms <= TIMEOUT_MS + SLACK_MS, f"blocked {call.blocked_ms:.1f} ms"
    assert real_redis.strlen(KEY) < 32, "the huge value was replaced by a start (by whichever round trip ran)"
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert "INVALID_PANIC_OVERRIDE" in {e["event"] for e in logs if e["log_level"] == "error"}
