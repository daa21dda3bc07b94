"""Figure 3: eight worker processes for ten seconds, 90 % calm and 10 % panic calls, on one server."""

from __future__ import annotations

import multiprocessing
import time
from itertools import cycle

from .harness import SUBPROCESS_ERRORS, BenchServer, Rounds, configure_bench_logging, server_commands
from .single_thread import CONTEXTS
from .table import Row, rate, times

PROCESSES = 8
SECONDS = 10.0
ROUNDS = 2


def _init_worker() -> None:
    configure_bench_logging("INFO")


def _work(kind: str, url: str, start_at: float, seconds: float) -> tuple[int, int]:
    """Decisions made by one worker between ``start_at`` and ``start_at + seconds``, and error lines logged."""
    from breaker import VIXCircuitBreaker, redis_client

    from . import harness
    from .seed_protocol import SeedBreaker

    harness.PROCESS_COUNTER.reset()

    client = redis_client(url, timeout_ms=1000)
    breaker = (
        VIXCircuitBreaker(client, key_prefix="bench:fleet:ours:")
        if kind == "ours"
        else SeedBreaker(client, key_prefix="bench:fleet:seed:")
    )
    statuses = cycle(["panic"] + ["normal"] * 9)
    contexts = cycle(CONTEXTS)
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds
    calls = 0
    while time.time() < deadline:
        for _ in range(10):
            breaker.get_ttl(60, next(statuses), next(contexts))
        calls += 10
    client.close()
    return calls, harness.PROCESS_COUNTER.total("error")


def fleet(bench: BenchServer) -> list[Row]:
    bench.client.flushall()
    commands: dict[str, list[float]] = {}
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES, initializer=_init_worker) as pool:

        def phase(kind: str):
            def measure() -> float:
                start_at = time.time() + 1.0  # every worker is ready before the clock starts
                jobs = [pool.apply_async(_work, (kind, bench.url, start_at, SECONDS)) for _ in range(PROCESSES)]
                time.sleep(max(0.0, start_at - time.time()))
                before = server_commands(bench.client)
                results = [job.get(timeout=SECONDS + 60) for job in jobs]
                commands.setdefault(kind, []).append((server_commands(bench.client) - before) / SECONDS)
                SUBPROCESS_ERRORS.append(sum(errors for _, errors in results))
                return sum(calls for calls, _ in results) / SECONDS

            return measure

        rounds = Rounds().run({"ours": phase("ours"), "seed": phase("seed")}, ROUNDS)
    cmd = Rounds({"ours": commands["ours"], "seed": commands["seed"]})
    label = f"{PROCESSES} processes × {SECONDS:.0f} s, 90 % calm / 10 % panic"
    ratio = rounds.ratio("ours", "seed")
    return [
        Row("3", f"{label}: decisions/s (total)", rate(rounds.median("ours")), rate(rounds.median("seed")),
            times(ratio), "ours > seed", ratio > 1),
        Row("3", f"{label}: server commands/s", f"{cmd.median('ours'):,.1f}/s", f"{cmd.median('seed'):,.0f}/s",
            times(cmd.ratio("ours", "seed")), "ours < seed", cmd.median("ours") < cmd.median("seed")),
    ]
