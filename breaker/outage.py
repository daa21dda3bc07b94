"""Outage bookkeeping: one ERROR when Redis becomes unavailable, one INFO when it recovers, no line per call.

During an outage the breaker answers panics fail-safe without trying Redis (back-off); this object counts
those answers, warns once that they carry no reliable timestamp, and reports the count on recovery.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError


class Outage:
    """Whether Redis is unavailable to this worker, since when, and how many answers it cost."""

    def __init__(self, log: Callable[[], Any], target: Callable[[], str], retry_after_s: float) -> None:
        self._log = log  # called for the logger each time: the breaker's logger may be replaced (tests, hosts)
        self._target = target
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._since: float | None = None
        self._calls = 0
        self._warned = False
        self._answered_while_probing = 0  # fail-safe answers given while a probe was in flight
        self.last_error: str | None = None

    @property
    def active(self) -> bool:
        return self._since is not None

    def failed(self, now: float, exc: BaseException, *, answered_fail_safe: bool = True,
               event: str | None = None) -> None:
        """A round trip failed: the first failure of an outage logs one ERROR. ``answered_fail_safe`` is False
        when the call that made it answers calm (calm calls carry the round trip too)."""
        self.last_error = f"{type(exc).__name__}: {exc}"  # redis-py 8's repr drops the message
        counted = 1 if answered_fail_safe else 0
        with self._lock:
            first = self._since is None
            if first:
                self._since, self._calls, self._warned = now, counted + self._answered_while_probing, False
                self._answered_while_probing = 0
            else:
                self._calls += counted
        if first:
            if event is None:
                event = "REDIS_UNAVAILABLE" if isinstance(exc, (RedisError, OSError)) else "VIX_CIRCUIT_BREAKER_ERROR"
            self._log().error(
                event, redis_status="configured_but_error", error=self.last_error, target=self._target(),
                retry_after_s=self.retry_after_s, answer="PANIC_FULL",
            )

    def answered_without_trying(self) -> None:
        """A fail-safe answer given without a round trip (backing off, or another thread's trip in flight)."""
        with self._lock:
            if self._since is None:
                self._answered_while_probing += 1
                return
            self._calls += 1
            warn, self._warned = not self._warned, True
        if warn:
            self._log().warning(
                "PANIC_WITHOUT_RELIABLE_TIMESTAMP", redis_status="configured_but_error", answer="PANIC_FULL"
            )

    def recovered(self, now: float) -> None:
        """A round trip succeeded: an outage in progress ends with one INFO line."""
        self._answered_while_probing = 0
        if self._since is None:
            return
        with self._lock:
            since, calls, self._since = self._since, self._calls, None
        if since is not None:
            self.last_error = None
            self._log().info("REDIS_RECOVERED", calls_answered_fail_safe=calls, outage_s=round(now - since, 3))
