"""Figure 7: resident memory over 1 000 000 calls in a fresh process, measured after a warm-up."""

from __future__ import annotations

import multiprocessing
import os
from itertools import cycle

from .harness import SUBPROCESS_ERRORS, BenchServer, configure_bench_logging
from .table import Row

CALLS = 1_000_000
WARM_UP = 100_000
CHECKPOINT = 100_000
FLAT_KIB = 512  # allocator noise; a leak of one object per call would be tens of MiB
DISTINCT_CONTEXTS = 10_000  # more than the classification cache holds: its bound is part of what is measured


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _calls(url: str) -> tuple[list[int], int]:
    """RSS (KiB) after the warm-up and at every checkpoint after it, and error lines logged."""
    from breaker import VIXCircuitBreaker, redis_client

    counter = configure_bench_logging("INFO")
    client = redis_client(url, timeout_ms=1000)
    breaker = VIXCircuitBreaker(client, key_prefix="bench:memory:")
    contexts = cycle([{"league": f"League {i}", "competition": "Ligue 1" if i % 2 else "Cup"}
                      for i in range(DISTINCT_CONTEXTS)])
    statuses = cycle(["panic", "normal", "warning", "normal", "normal"])
    samples = []
    for done in range(0, CALLS, CHECKPOINT):
        for _ in range(CHECKPOINT):
            breaker.get_ttl(60, next(statuses), next(contexts))
        if done + CHECKPOINT >= WARM_UP:
            samples.append(_rss_kib())
    client.close()
    return samples, counter.total("error")


def memory(bench: BenchServer) -> list[Row]:
    bench.client.flushall()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        samples, errors = pool.apply(_calls, (bench.url,))
    SUBPROCESS_ERRORS.append(errors)
    growth = samples[-1] - samples[0]
    return [
        Row("7", f"RSS growth from call {WARM_UP:,} to call {CALLS:,} (mixed statuses, "
                 f"{DISTINCT_CONTEXTS:,} contexts)", f"{growth:+,} KiB (at warm-up {samples[0]:,} KiB)",
            goal=f"flat: ≤ {FLAT_KIB} KiB", met=growth <= FLAT_KIB),
    ]
