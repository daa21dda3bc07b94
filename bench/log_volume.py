"""Figure 5: INFO lines written during a steady panic that lasts seven (simulated) hours."""

from __future__ import annotations

import time

from breaker import AdaptivePanicQuota, VIXCircuitBreaker

from .harness import BenchServer, LineCounter
from .seed_protocol import SeedBreaker
from .table import Row, times

CALLS = 100_000
SEED_CALLS = 10_000  # the seed makes three round trips a call: measured on a tenth, scaled
PANIC_S = 7 * 3600
CONTEXTS = ({"stakes": "high"}, {"stakes": "medium"}, {"stakes": "low"})


class SteppedClock:
    """Simulated time: each call moves it on, so 100 000 calls cross every tier of every stakes class."""

    def __init__(self, start: float, step: float) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        return self.now


def _run(breaker, clock: SteppedClock, calls: int) -> None:
    for i in range(calls):
        breaker.get_ttl(60, "panic", CONTEXTS[i % 3])
        clock.now += clock.step


def expected_changes(calls: int, step: float) -> int:
    """Tier changes of the three stakes classes over the same simulated times, from the pure policy."""
    quota = AdaptivePanicQuota()
    last: dict[int, int] = {}
    changes = 0
    for i in range(calls):
        importance = quota.classify(CONTEXTS[i % 3])
        tier = quota.decide(60, i * step / 60.0, importance, True).tier
        if last.get(i % 3) != tier:
            changes += 1
            last[i % 3] = tier
    return changes


def log_volume(bench: BenchServer, counter: LineCounter) -> list[Row]:
    bench.client.flushall()
    step = PANIC_S / CALLS
    clock = SteppedClock(time.time(), step)
    counter.reset()
    _run(VIXCircuitBreaker(bench.client, key_prefix="bench:log:ours:", clock=clock, server_time=False), clock, CALLS)
    ours_info = counter.total("info")
    others = sorted(name.replace(":", " ", 1).upper() for name in counter.counts if not name.startswith("info:"))
    seed_clock = SteppedClock(time.time(), PANIC_S / SEED_CALLS)
    counter.reset()
    _run(SeedBreaker(bench.client, key_prefix="bench:log:seed:", clock=seed_clock), seed_clock, SEED_CALLS)
    seed_info = counter.total("info") * CALLS // SEED_CALLS
    changes = expected_changes(CALLS, step)
    return [
        Row("5", f"INFO lines per {CALLS:,} steady-panic calls (7 h simulated, 3 stakes classes)",
            f"{ours_info}" + (f" (+ {', '.join(others)})" if others else ""),
            f"{seed_info:,} (measured on {SEED_CALLS:,}, ×10)",
            times(ours_info / seed_info), f"= tier changes ({changes})", ours_info == changes),
    ]
