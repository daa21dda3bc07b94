"""``vix-breaker exporter``: the fleet's state for Prometheus, from one Redis round trip per scrape.

Practice followed (Prometheus naming and instrumentation guides): timestamps rather than "time since", named
``_timestamp_seconds`` (``vix_breaker_panic_start_timestamp_seconds``), one 1/0 gauge per state instead of an
Enum, no ``_per_second`` gauges (rates are ``rate()`` of the workers' own counters), and every series present,
at 0, when there is no panic, no override or no worker. The alert rules in ``deploy/alerts/`` read these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..clock import PanicClock
from ..heartbeat import STATES
from ..override import OverrideMode
from ..policy import AdaptivePanicQuota, PanicMode
from .fleet import FleetView
from .fleet_summary import FleetSummary, read_summary
from .metrics_server import MetricsServer
from .overrides import DEFAULT_MAX_OVERRIDE_S
from .status import class_statuses
from .zombie import DEFAULT_STALE_AFTER_S, zombie_verdict

#: every metric the exporter serves: docs/metrics.md lists the same names (a test compares them)
EXPORTED = (
    "vix_breaker_up",
    "vix_breaker_redis_time_timestamp_seconds",
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
    "vix_breaker_workers_reporting",
    "vix_breaker_panic_epoch",
    "vix_breaker_panic_epochs_reported",
    "vix_breaker_worker_clock_skew_max_seconds",
    "vix_breaker_worker_clock_skew_min_seconds",
)


def _gauge(name: str, doc: str, value: float | None = None, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    if value is None:
        return GaugeMetricFamily(name, doc, labels=list(labels))
    return GaugeMetricFamily(name, doc, value=value)


class FleetCollector(Collector):
    """Reads the fleet once per ``collect()``: ``read_summary`` (clock, override, epoch and the workers' per-bucket
    aggregates), the same few commands at any fleet size."""

    def __init__(self, clock: PanicClock, *, interval_s: float = 1.0,
                 stale_after_s: float = DEFAULT_STALE_AFTER_S, quota: AdaptivePanicQuota | None = None,
                 max_override_s: float = DEFAULT_MAX_OVERRIDE_S) -> None:
        self.clock = clock
        self.interval_s = interval_s
        self.max_override_s = max_override_s  # the workers' cap: an override past it is not in force for them
        self.stale_after_s = stale_after_s
        self.quota = quota or AdaptivePanicQuota()

    def describe(self) -> list[Any]:
        return []  # registering must not cost a round trip

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            view = read_summary(self.clock, interval_s=self.interval_s, max_override_s=self.max_override_s)
        except Exception:  # Redis down: say so, and nothing else (stale values would be lies)
            yield _gauge("vix_breaker_up", "1 when the last scrape read the fleet from Redis.", 0)
            return
        override = view.override
        reading = summary_observed_reading(view)
        yield _gauge("vix_breaker_up", "1 when the last scrape read the fleet from Redis.", 1)
        yield _gauge("vix_breaker_redis_time_timestamp_seconds", "The Redis server's clock at the scrape.", view.now)
        yield _gauge("vix_breaker_panic_active", "1 while a panic clock exists.", 1 if reading.exists else 0)
        yield _gauge("vix_breaker_panic_start_timestamp_seconds",
                     "Panic start (Unix time, server clock); 0 without a readable clock.", reading.start or 0)
        yield _gauge("vix_breaker_panic_last_observed_timestamp_seconds",
                     "Last time a worker observed the panic (the recorded mark, or a worker's heartbeat answering "
                     "from the clock); 0 when none is known.", reading.last_observed_at or 0)
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
        yield _gauge("vix_breaker_override_invalid",
                     "1 when a stored override is not one workers honour (they ignore it).",
                     1 if override.invalid_reason not in (None, "expired") else 0)
        workers = _gauge("vix_breaker_workers", "Workers by the state of their last heartbeat.", labels=("state",))
        for state in STATES:
            workers.add_metric([state], view.counts.get(state, 0))
        yield workers
        yield _gauge("vix_breaker_workers_disagreeing", "Workers answering a tier the clock does not imply.",
                     view.disagreeing)
        yield _gauge("vix_breaker_workers_reporting", "Distinct workers that beat in the last complete window.",
                     view.reporting)
        yield _gauge("vix_breaker_panic_epoch", "The panic epoch counter (a new panic start bumps it); 0: none yet.",
                     view.epoch or 0)
        yield _gauge("vix_breaker_panic_epochs_reported",
                     "Distinct epochs panic beats answered from in the window (more than 1: a new start, or a start "
                     "lost in a failover).", len(view.epochs))
        yield _gauge("vix_breaker_worker_clock_skew_max_seconds",
                     "Largest worker clock minus server clock over the window's beats; 0 without beats.",
                     view.skew_max or 0)
        yield _gauge("vix_breaker_worker_clock_skew_min_seconds",
                     "Smallest worker clock minus server clock over the window's beats; 0 without beats.",
                     view.skew_min or 0)


def observed_reading(view: FleetView) -> Any:
    """The clock reading with its last observation taken as the later of the recorded mark and the newest
    heartbeat of a worker that answered panic from the clock (state ``panic``: not failing safe, and honouring no
    override: under ``force_full`` even calm calls answer ``PANIC_FULL`` without observing anything). A fleet
    that cannot write the mark (no scripting: its fallback writes only the clock) still observes the clock
    every interval, and its heartbeats say so: without this every panic of such a fleet would look like a
    zombie, "not refreshed"."""
    reading = view.reading
    if not reading.exists:
        return reading
    beats = [beat.seen for beat in view.workers if beat.state == "panic" and beat.override is None]
    if not beats:
        return reading
    newest = min(max(beats), view.now)
    if reading.last_observed_at is not None and reading.last_observed_at >= newest:
        return reading
    return dataclasses.replace(reading, last_observed_at=newest)


def summary_observed_reading(view: FleetSummary) -> Any:
    """``observed_reading`` from the aggregates: the later of the recorded mark and the newest beat of a worker
    that answered panic from the clock (``panic_seen``, written by such beats only)."""
    reading = view.reading
    if not reading.exists or view.panic_seen is None:
        return reading
    if reading.last_observed_at is not None and reading.last_observed_at >= view.panic_seen:
        return reading
    return dataclasses.replace(reading, last_observed_at=view.panic_seen)


def exporter_registry(clock: PanicClock, **options: Any) -> CollectorRegistry:
    """A registry holding only the fleet collector (no process or platform metrics of the exporter itself)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(clock, **options))
    return registry


def serve_exporter(clock: PanicClock, *, host: str = "127.0.0.1", port: int = 9108, max_connections: int = 100,
                   request_timeout_s: float = 5.0, **options: Any) -> tuple[MetricsServer, Any]:
    """Serve ``/metrics`` on ``host:port`` (loopback by default) from a ``MetricsServer`` (bounded threads and
    connections, a deadline per request); returns (server, its thread)."""
    server = MetricsServer(exporter_registry(clock, **options), host, port, max_connections=max_connections,
                           request_timeout_s=request_timeout_s)
    return server, server.thread

