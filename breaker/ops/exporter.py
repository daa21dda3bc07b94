"""``vix-breaker exporter``: the fleet's state for Prometheus, from one Redis round trip per scrape.

Practice followed (Prometheus naming and instrumentation guides): timestamps rather than "time since"
(``vix_breaker_panic_start_timestamp_seconds``), one 1/0 gauge per state instead of an Enum, and every
series present, at 0, when there is no panic, no override or no worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..clock import PanicClock
from ..heartbeat import STATES
from ..override import OverrideMode
from ..policy import AdaptivePanicQuota, PanicMode
from .fleet import read_fleet
from .status import class_statuses
from .zombie import DEFAULT_STALE_AFTER_S, zombie_verdict

#: every metric the exporter serves: docs/metrics.md lists the same names (a test compares them)
EXPORTED = (
    "vix_breaker_up",
    "vix_breaker_redis_time_seconds",
    "vix_breaker_panic_active",
    "vix_breaker_panic_start_timestamp_seconds",
    "vix_breaker_panic_last_observed_timestamp_seconds",
    "vix_breaker_panic_key_expiry_timestamp_seconds",
    "vix_breaker_panic_clock_zombie",
    "vix_breaker_tier",
    "vix_breaker_mode",
    "vix_breaker_override",
    "vix_breaker_override_end_timestamp_seconds",
    "vix_breaker_override_invalid",
    "vix_breaker_workers",
    "vix_breaker_workers_disagreeing",
    "vix_breaker_fleet_answers_per_second",
    "vix_breaker_fleet_fail_safe_answers_per_second",
)


def _gauge(name: str, doc: str, value: float | None = None, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    if value is None:
        return GaugeMetricFamily(name, doc, labels=list(labels))
    return GaugeMetricFamily(name, doc, value=value)


class FleetCollector(Collector):
    """Reads the fleet (``read_fleet``: workers, clock, override) once per ``collect()``."""

    def __init__(self, clock: PanicClock, *, interval_s: float = 1.0,
                 stale_after_s: float = DEFAULT_STALE_AFTER_S, quota: AdaptivePanicQuota | None = None) -> None:
        self.clock = clock
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s
        self.quota = quota or AdaptivePanicQuota()

    def describe(self) -> list[Any]:
        return []  # registering must not cost a round trip

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            view = read_fleet(self.clock, interval_s=self.interval_s)
        except Exception:  # Redis down: say so, and nothing else (stale values would be lies)
            yield _gauge("vix_breaker_up", "1 when the last scrape read the fleet from Redis.", 0)
            return
        reading, override = view.reading, view.override
        yield _gauge("vix_breaker_up", "1 when the last scrape read the fleet from Redis.", 1)
        yield _gauge("vix_breaker_redis_time_seconds", "The Redis server's clock at the scrape.", view.now)
        yield _gauge("vix_breaker_panic_active", "1 while a panic clock exists.", 1 if reading.exists else 0)
        yield _gauge("vix_breaker_panic_start_timestamp_seconds",
                     "Panic start (Unix time, server clock); 0 without a readable clock.", reading.start or 0)
        yield _gauge("vix_breaker_panic_last_observed_timestamp_seconds",
                     "Last time a worker observed the panic; 0 when none is recorded.", reading.last_observed_at or 0)
        expiry = view.now + reading.expiry_left_s if reading.expiry_left_s is not None else 0
        yield _gauge("vix_breaker_panic_key_expiry_timestamp_seconds",
                     "When the clock ends unless observed again; 0 without a clock or without an expiry.", expiry)
        zombie = zombie_verdict(reading, self.stale_after_s).suspect
        yield _gauge("vix_breaker_panic_clock_zombie", "1 when the clock is a zombie suspect (see the console).",
                     1 if zombie else 0)
        tier = _gauge("vix_breaker_tier", "Tier the clock implies per stakes class (0: no panic).",
                      labels=("stakes",))
        mode = _gauge("vix_breaker_mode", "1 for the mode the clock implies per stakes class, 0 for the others.",
                      labels=("stakes", "mode"))
        for status in class_statuses(reading, 60, self.quota):
            tier.add_metric([status.importance.value], status.tier)
            for each in PanicMode:
                mode.add_metric([status.importance.value, each.value], 1 if each is status.mode else 0)
        yield tier
        yield mode
        active = override.override
        per_mode = _gauge("vix_breaker_override", "1 for the operator override in force, per mode.",
                          labels=("mode",))
        for each in OverrideMode:
            per_mode.add_metric([each.value], 1 if active is not None and active.mode is each else 0)
        yield per_mode
        yield _gauge("vix_breaker_override_end_timestamp_seconds", "When the override in force ends; 0 without one.",
                     active.until if active is not None else 0)
        yield _gauge("vix_breaker_override_invalid", "1 when a stored override does not parse (workers ignore it).",
                     1 if override.invalid_reason not in (None, "expired") else 0)
        workers = _gauge("vix_breaker_workers", "Workers by the state of their last heartbeat.", labels=("state",))
        for state in STATES:
            workers.add_metric([state], view.counts.get(state, 0))
        yield workers
        yield _gauge("vix_breaker_workers_disagreeing", "Workers answering a tier the clock does not imply.",
                     len(view.disagreeing))
        yield _gauge("vix_breaker_fleet_answers_per_second", "Answers per second the live workers report.",
                     view.answers_per_s)
        live = [beat for beat in view.workers if beat.state not in ("stale", "gone")]
        fail_safe = sum(beat.fail_safe / max(beat.interval_s or self.interval_s, 1e-3) for beat in live)
        yield _gauge("vix_breaker_fleet_fail_safe_answers_per_second",
                     "Fail-safe answers per second the live workers report.", fail_safe)


def exporter_registry(clock: PanicClock, **options: Any) -> CollectorRegistry:
    """A registry holding only the fleet collector (no process or platform metrics of the exporter itself)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(clock, **options))
    return registry


def serve_exporter(clock: PanicClock, *, host: str = "127.0.0.1", port: int = 9108, **options: Any) -> tuple[Any, Any]:
    """Serve ``/metrics`` on ``host:port`` (loopback by default); returns prometheus_client's (server, thread)."""
    return start_http_server(port, addr=host, registry=exporter_registry(clock, **options))

