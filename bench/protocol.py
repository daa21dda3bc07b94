"""Figure 9: protocol v2's cost per worker, measured by the server, and the script against a MULTI.

A worker makes one round trip per ``refresh_interval_s`` in every state: counted here as the server's EVALSHA
and EVAL calls while one worker answers as fast as it can for a few seconds, calm and then in a panic. The
commands the script runs inside that one round trip are reported beside it (the server counts them too).
"""

from __future__ import annotations

import statistics
import time

from breaker import VIXCircuitBreaker
from breaker.clock import PanicClock
from breaker.heartbeat import beat_json

from .harness import BenchServer, server_commands
from .table import Row, rate

RUN_S = 3.0
INTERVAL_S = 1.0
SAMPLES = 2000


def _script_calls(client) -> int:
    stats = client.info("commandstats")
    return sum(stats.get(name, {"calls": 0})["calls"] for name in ("cmdstat_evalsha", "cmdstat_eval"))


def _steady(bench: BenchServer, status: str) -> tuple[int, float, float, int]:
    """(round trips, seconds measured, commands per second, calls answered) of one worker over RUN_S."""
    bench.client.flushall()
    breaker = VIXCircuitBreaker(bench.client, key_prefix=f"bench:v2:{status}:", refresh_interval_s=INTERVAL_S)
    breaker.get_ttl(60, status)  # the first round trip, outside the window
    trips, commands = _script_calls(bench.client), server_commands(bench.client)
    calls, began = 0, time.perf_counter()
    while time.perf_counter() - began < RUN_S:
        for _ in range(1000):
            breaker.get_ttl(60, status, {"league": "Ligue 1"})
        calls += 1000
    elapsed = time.perf_counter() - began
    trips = _script_calls(bench.client) - trips
    return trips, elapsed, (server_commands(bench.client) - commands) / elapsed, calls


def _latency_us(run) -> float:
    samples = []
    for _ in range(SAMPLES):
        began = time.perf_counter_ns()
        run()
        samples.append((time.perf_counter_ns() - began) / 1e3)
    return statistics.median(samples)


def script_against_multi(bench: BenchServer) -> tuple[float, float]:
    """Median µs of one panic round trip: our script (EVALSHA through wire) and the same work as a MULTI."""
    client = bench.client
    client.flushall()
    clock = PanicClock(client, key_prefix="bench:v2:lat:")
    beat = beat_json(host="h", pid=1, started=1.0, interval_s=1.0, calls={"NORMAL": 5}, fail_safe=0, tiers={},
                     override=None, error=None, version="bench")

    def script() -> None:
        clock.round_trip(observe=True, worker_id="h:1:beef", beat=beat)

    def multi() -> None:
        pipe = client.pipeline(transaction=True)
        pipe.time()
        pipe.set(clock.start_key, "1800000000.0", nx=True, ex=900)
        pipe.get(clock.start_key)
        pipe.expire(clock.start_key, 900)
        pipe.set(clock.last_seen_key, "1800000000.0", ex=900)
        pipe.get(clock.override_key)
        pipe.hset(clock.workers_key, "h:1:beef", beat + "1}")
        pipe.execute()

    medians = {"script": [], "multi": []}
    for _ in range(3):  # alternate, so that machine noise hits both alike
        medians["script"].append(_latency_us(script))
        medians["multi"].append(_latency_us(multi))
    return statistics.median(medians["script"]), statistics.median(medians["multi"])


def protocol(bench: BenchServer) -> list[Row]:
    rows = []
    for status, label in (("normal", "steady calm"), ("panic", "steady panic")):
        trips, elapsed, commands, calls = _steady(bench, status)
        allowed = int(elapsed / INTERVAL_S) + 1  # one per interval; the window may catch one more at its edge
        rows.append(Row(
            "9", f"v2 {label}, 1 worker at full speed ({rate(calls / elapsed)} answers), {elapsed:.1f} s: round "
                 f"trips (server-counted; {commands:.1f} commands/s incl. those inside the script)",
            f"{trips} ({trips / elapsed:.2f}/s)", goal=f"≤ 1 per refresh_interval_s ({INTERVAL_S:g} s): ≤ {allowed}",
            met=trips <= allowed,
        ))
    script, multi = script_against_multi(bench)
    rows.append(Row("9", "one panic round trip: script via EVALSHA (ours) vs the same work as MULTI/EXEC (redis-py)",
                    f"{script:.0f} µs", f"{multi:.0f} µs (MULTI)", f"{multi / script:.1f}×"))
    return rows
