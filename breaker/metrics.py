"""Prometheus metrics of one worker, registered on the registry its host passes in.

The library starts no server and uses only counters and a histogram, so it is safe under
``prometheus_client``'s multiprocess mode (no Enum, no Info, no gauges). Every labelled child is bound
once, at construction: counting an answer is a dict lookup and one ``inc()``.

    registry = prometheus_client.CollectorRegistry()   # or prometheus_client.REGISTRY
    breaker = VIXCircuitBreaker(client, metrics=registry)
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from .importance import MatchImportance
from .policy import PanicMode

#: The clock's methods a worker's breaker calls, each one round trip (separate_round_trip: the fallback
#: for servers without scripting, a few separate commands, counted as one).
ROUND_TRIP_METHODS = ("round_trip", "separate_round_trip", "end")
UNCLASSIFIED = "unclassified"
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, BreakerMetrics] = weakref.WeakKeyDictionary()


class BreakerMetrics:
    """The worker-side metrics (``vix_breaker_*``) on one registry; every breaker of a process may share them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.answers = Counter("vix_breaker_answers_total", "Answers of get_ttl, by mode and stakes class.",
                               ["mode", "stakes"], registry=registry)
        self.fail_safe = Counter("vix_breaker_fail_safe_answers_total",
                                 "Answers that failed safe to (0, PANIC_FULL): no reliable panic start, bad input.",
                                 registry=registry)
        self.round_trips = Counter("vix_breaker_redis_round_trips_total",
                                   "Round trips to Redis for the shared panic clock.", registry=registry)
        self.errors = Counter("vix_breaker_redis_errors_total",
                              "Round trips to Redis that failed (error or timeout).", registry=registry)
        self.latency = Histogram("vix_breaker_redis_round_trip_seconds",
                                 "Duration of a round trip to Redis, failed ones included.",
                                 buckets=LATENCY_BUCKETS_S, registry=registry)
        self._answer = {
            (mode.value, stakes): self.answers.labels(mode=mode.value, stakes=stakes or UNCLASSIFIED)
            for mode in PanicMode for stakes in (*(m.value for m in MatchImportance), None)
        }

    @classmethod
    def on(cls, registry_or_metrics: Any) -> BreakerMetrics:
        """The metrics of ``registry`` (created once per registry: a second breaker reuses them)."""
        if isinstance(registry_or_metrics, BreakerMetrics):
            return registry_or_metrics
        if not isinstance(registry_or_metrics, CollectorRegistry):
            raise TypeError(f"metrics must be a prometheus_client CollectorRegistry, got {registry_or_metrics!r}")
        metrics = _BY_REGISTRY.get(registry_or_metrics)
        if metrics is None:
            metrics = _BY_REGISTRY[registry_or_metrics] = cls(registry_or_metrics)
        return metrics

    def count_answers(self, answers: Any) -> None:
        """Count every answer the breaker tallies for its heartbeat (``AnswerCounts.count``), by mode and stakes
        class: the metrics and the heartbeats report the same answers. An answer given without classifying the
        match (calm markets, overrides, bad input) is ``stakes="unclassified"``."""
        count, fail_safe_total = answers.count, self.fail_safe
        incs = {key: _adder(child) for key, child in self._answer.items()}  # bound once: a lookup and a call

        def counted(mode: str, *, fail_safe: bool = False, stakes: str | None = None, tier: int = 0) -> None:
            count(mode, fail_safe=fail_safe, stakes=stakes, tier=tier)
            try:  # metrics never change an answer (try costs nothing on the way through; a `with` would)
                incs[(mode, stakes)]()
                if fail_safe:
                    fail_safe_total.inc()
            except Exception:
                pass

        answers.count = counted

    def time_round_trips(self, clock: Any) -> None:
        """Count and time every round trip ``clock`` makes for the breaker (its instance methods are wrapped)."""
        for name in ROUND_TRIP_METHODS:
            method = getattr(clock, name, None)
            if method is not None:
                setattr(clock, name, self._timed(method))

    def _timed(self, call: Callable[..., Any]) -> Callable[..., Any]:
        round_trips, errors, latency = self.round_trips, self.errors, self.latency

        @functools.wraps(call)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return call(*args, **kwargs)
            except Exception:
                errors.inc()
                raise
            finally:
                latency.observe(time.perf_counter() - began)
                round_trips.inc()

        return timed


def _adder(child: Counter) -> Callable[[], None]:
    """``child.inc`` without its per-call checks (labels bound, amount 1, no exemplar): the value's own ``inc(1)``,
    which takes the value's lock (and writes the mmap file in multiprocess mode), as ``Counter.inc`` does after
    its checks. prometheus_client is pinned; any other shape of child falls back to ``child.inc``."""
    value = getattr(child, "_value", None)
    inc = getattr(value, "inc", None)
    return functools.partial(inc, 1) if callable(inc) else child.inc


def instrument_breaker(breaker: Any, registry: Any) -> BreakerMetrics:
    """Count ``breaker``'s answers and time its round trips on ``registry`` (``VIXCircuitBreaker(metrics=)``)."""
    metrics = BreakerMetrics.on(registry)
    breaker.metrics = metrics
    metrics.count_answers(breaker._answers)
    if breaker.panic_clock is not None:
        metrics.time_round_trips(breaker.panic_clock)
    return metrics
