"""The notifier's own Prometheus registry (``--metrics-port``): counters per target, and the lag.

Lag is a timestamp, not an age (Prometheus practice): ``vix_breaker_notify_oldest_undelivered_timestamp_seconds``
is the stream time of the oldest event read but not yet delivered everywhere (0 when none), and
``time() - that`` is the age an alert compares.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

NOTIFY_METRICS = (
    "vix_breaker_notify_delivered_total",
    "vix_breaker_notify_failed_total",
    "vix_breaker_notify_retried_total",
    "vix_breaker_notify_dead_lettered_total",
    "vix_breaker_notify_lost_total",
    "vix_breaker_notify_oldest_undelivered_timestamp_seconds",
    "vix_breaker_notify_last_read_timestamp_seconds",
)


class NotifierMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.delivered = Counter("vix_breaker_notify_delivered", "Events a target answered 2xx for.",
                                 ["target"], registry=r)
        self.failed = Counter("vix_breaker_notify_failed", "Tries that got no 2xx (error, timeout, 3xx/4xx/5xx).",
                              ["target"], registry=r)
        self.retried = Counter("vix_breaker_notify_retried", "Tries after a failed one.", ["target"], registry=r)
        self.dead_lettered = Counter("vix_breaker_notify_dead_lettered", "Events given up on after the last try.",
                                     ["target"], registry=r)
        self.lost = Counter("vix_breaker_notify_lost", "Audit entries trimmed away before the notifier read them.",
                            registry=r)
        self.oldest_undelivered = Gauge("vix_breaker_notify_oldest_undelivered_timestamp_seconds",
                                        "Stream time of the oldest event not yet delivered everywhere; 0: none.",
                                        registry=r)
        self.last_read = Gauge("vix_breaker_notify_last_read_timestamp_seconds",
                               "When the notifier last read the audit stream (its liveness).", registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> tuple:
        return start_http_server(port, addr=host, registry=self.registry)
