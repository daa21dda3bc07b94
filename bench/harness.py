"""What every figure shares: the server, command counting, log set-up, alternating rounds."""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from breaker import configure_logging, redis_client
from breaker.ops.embedded import start_embedded_server


class LineCounter:
    """A structlog processor that counts the lines that reach the renderer, per event name."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        name = f"{method}:{event_dict.get('event')}"
        self.counts[name] = self.counts.get(name, 0) + 1
        return event_dict

    def count_record(self, record: logging.LogRecord) -> None:
        """The same count for a line of the stdlib logger ``breaker`` (where the breaker logs)."""
        name = f"{record.levelname.lower()}:{getattr(record, 'event', record.getMessage())}"
        self.counts[name] = self.counts.get(name, 0) + 1

    def reset(self) -> None:
        self.counts.clear()

    def total(self, method: str | None = None) -> int:
        return sum(n for key, n in self.counts.items() if method is None or key.startswith(f"{method}:"))


#: this process's counter (a worker process has its own), and error lines reported by worker processes
PROCESS_COUNTER: LineCounter | None = None
SUBPROCESS_ERRORS: list[int] = []


class _CountingHandler(logging.Handler):
    """Counts the breaker's lines after its formatter has written them (the formatting cost stays in)."""

    def __init__(self, counter: LineCounter) -> None:
        super().__init__()
        self.counter = counter

    def emit(self, record: logging.LogRecord) -> None:
        self.counter.count_record(record)


def configure_bench_logging(level: str = "INFO") -> LineCounter:
    """The console's own set-up (level filter, timestamp, renderer) writing to /dev/null, plus a counter.

    Both sides get this, so the seed's INFO line (structlog) costs exactly the formatting it costs in
    production, and so does ours (stdlib logger ``breaker``).
    """
    structlog.reset_defaults()
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    configure_logging(level, "console", stream=sink)
    counter = LineCounter()
    breaker_log = logging.getLogger("breaker")
    for old in [h for h in breaker_log.handlers if isinstance(h, _CountingHandler)]:
        breaker_log.removeHandler(old)
    breaker_log.addHandler(_CountingHandler(counter))
    processors = list(structlog.get_config()["processors"])
    processors.insert(len(processors) - 1, counter)
    structlog.configure(processors=processors, logger_factory=structlog.PrintLoggerFactory(sink))
    global PROCESS_COUNTER
    PROCESS_COUNTER = counter
    return counter


@contextlib.contextmanager
def breaker_logging_unconfigured() -> Iterator[None]:
    """The stdlib logger ``breaker`` as a host that configured nothing leaves it (no handler, level from root)."""
    logger = logging.getLogger("breaker")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    try:
        yield
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def server_commands(client: Any) -> int:
    """Commands the server has executed so far, INFO itself excluded (counted by the server)."""
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


@dataclass
class BenchServer:
    """An embedded Valkey and a worker-style client (no retries) for the whole run."""

    server: Any
    url: str
    client: Any

    @classmethod
    def start(cls) -> BenchServer:
        server = start_embedded_server()
        url = server.connection_url
        return cls(server, url, redis_client(url, timeout_ms=1000))

    def new_client(self) -> Any:
        return redis_client(self.url, timeout_ms=1000)

    def stop(self) -> None:
        self.client.close()
        self.server.stop()


def calls_per_second(call: Callable[[], Any], seconds: float, batch: int) -> float:
    """Calls per second of ``call`` over about ``seconds`` of wall time, checked every ``batch`` calls."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            call()
        calls += batch
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


@dataclass
class Rounds:
    """Samples of several contenders measured in alternating rounds (A B A B ...)."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def run(self, contenders: dict[str, Callable[[], float]], rounds: int) -> Rounds:
        for _ in range(rounds):
            for name, measure in contenders.items():
                self.samples.setdefault(name, []).append(measure())
        return self

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def ratio(self, name: str, baseline: str) -> float:
        return self.median(name) / self.median(baseline)
