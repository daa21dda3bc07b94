"""Figure R: operator reads at 1 000, 10 000 and 100 000 heartbeats on one server (issues 21 and 24).

The fleet is written by the round-trip script itself (pipelined EVALSHA, one per worker: the heartbeat and the
per-bucket aggregates, ``breaker.refresh``), then the figure waits for that bucket to complete, so that the
readers read the aggregates as they would in a live fleet. Per size: a scrape
(``FleetCollector.collect``, what the exporter runs), ``vix-breaker status`` and ``vix-breaker fleet`` (default
output) run in-process through click's runner (no interpreter start-up), the median of a few runs each; and the
server's side of each of those three reads from SLOWLOG with a 0 µs threshold: the sum of its commands' durations
and the longest single command (a MULTI/EXEC counts as its EXEC). Issue 24's targets are judged: scrape < 200 ms,
status < 1 s, fleet < 2 s, server time per read < 5 ms.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import Iterator

import structlog
from click.testing import CliRunner

from breaker import PanicClock
from breaker.clock import server_time
from breaker.heartbeat import answer_state, beat_json
from breaker.ops.cli import cli
from breaker.ops.exporter import FleetCollector
from breaker.ops.fleet_summary import read_summary

from .harness import BenchServer
from .table import Row

SIZES = (1_000, 10_000, 50_000, 100_000)
RUNS = 3
BATCH = 5_000
PREFIX = "bench:reads:"


def write_beats(client, count: int, now: float, prefix: str = PREFIX) -> None:
    """``count`` workers' round trips through the real script (one in 10 fail-safe, half in panic), interval
    10 s: each writes its heartbeat and adds to the current bucket's aggregates. Returns once that bucket is
    complete (the readers' window)."""
    from breaker import refresh

    clock = PanicClock(client, key_prefix=prefix)
    client.script_load(refresh.SCRIPT)
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        panic, fail_safe = i % 2 == 1, 4 if i % 10 == 0 else 0
        calls = {"PANIC_PARTIAL": 40} if panic else {"NORMAL": 40}
        tiers = {"high_stakes": 1, "low_stakes": 2} if panic else {}
        beat = beat_json(host=f"host{i // 16}", pid=1000 + i, started=now - 900, interval_s=10.0, calls=calls,
                         fail_safe=fail_safe, tiers=tiers, override=None, error=None, version="0.1.0")
        args = refresh.arguments(clock._keys, observe=False, now="", ttl_s=900,
                                 worker_id=f"host{i // 16}:{1000 + i}:{i % 65536:04x}", beat=beat, beat_ttl_s=600,
                                 hexpire=True, ascii_only=False, max_age_s=48 * 3600, local_now=repr(time.time()),
                                 state=answer_state(calls, fail_safe), calls=calls, fail_safe=fail_safe, tiers=tiers,
                                 interval_s=10.0)
        pipe.evalsha(refresh.SCRIPT_SHA.decode(), *args)
        if len(pipe) >= BATCH:
            pipe.execute()
    pipe.execute()
    last = server_time(client.time()) // refresh.AGG_BUCKET_S
    while server_time(client.time()) // refresh.AGG_BUCKET_S <= last:
        time.sleep(0.1)


def _median_ms(call) -> float:
    timings = []
    for _ in range(RUNS):
        began = time.perf_counter()
        call()
        timings.append((time.perf_counter() - began) * 1000)
    return statistics.median(timings)


def _server_time(client, read) -> tuple[float, float, int]:
    """(sum of command durations in ms, longest command in ms, commands) the server spent on ``read()``: SLOWLOG
    with a 0 µs threshold around it (a MULTI/EXEC counts as its EXEC; CONFIG and SLOWLOG themselves excluded)."""
    old = client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    old_len = client.config_get("slowlog-max-len")["slowlog-max-len"]
    client.config_set("slowlog-max-len", 10_000)
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    try:
        read()
        entries = client.slowlog_get(10_000)
    finally:
        client.config_set("slowlog-log-slower-than", old)
        client.config_set("slowlog-max-len", old_len)
    entries = [e for e in entries if e["command"].split(b" ")[0].upper() not in (b"CONFIG", b"SLOWLOG")]
    durations = [e["duration"] / 1000 for e in entries]
    return sum(durations), max(durations, default=0.0), len(entries)


def operator_reads(bench: BenchServer) -> list[Row]:
    client = bench.client
    clock = PanicClock(client, key_prefix=PREFIX)
    runner = CliRunner()
    env = {"REDIS_URL": bench.url, "BREAKER_KEY_PREFIX": PREFIX, "BREAKER_REFRESH_INTERVAL_S": "10"}
    rows = []
    with _logging_kept():  # the CLI configures logging for its process: the run's error counter must stay
        for size in SIZES:
            rows += _one_size(bench, clock, runner, env, size)
    client.delete(f"{PREFIX}workers", f"{PREFIX}workers_prune_cursor", clock.start_key, clock.last_seen_key)
    from breaker.ops.fleet_summary import aggregate_keys

    client.delete(*aggregate_keys(clock, server_time(client.time()), back_s=600))
    return rows


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    logger = logging.getLogger("breaker")
    saved = (list(logger.handlers), logger.level, logger.propagate, structlog.get_config())
    try:
        yield
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
        structlog.configure(**saved[3])


def _one_size(bench: BenchServer, clock: PanicClock, runner: CliRunner, env: dict[str, str], size: int) -> list[Row]:
    client = bench.client
    rows = []
    client.delete(f"{PREFIX}workers")
    now = float(client.time()[0])
    write_beats(client, size, now)
    clock.observe(now - 600)
    collector = FleetCollector(clock, interval_s=10.0)
    list(collector.collect())  # warm
    scrape = _median_ms(lambda: list(collector.collect()))
    status = _median_ms(lambda: runner.invoke(cli, ["status"], env=env))
    fleet = _median_ms(lambda: runner.invoke(cli, ["fleet"], env=env))
    served = {name: _server_time(client, read) for name, read in (
        ("scrape", lambda: list(collector.collect())),
        ("status", lambda: runner.invoke(cli, ["status"], env=env)),
        ("fleet", lambda: runner.invoke(cli, ["fleet"], env=env)),
    )}
    hgetall_ms = _server_time(client, lambda: client.execute_command("HGETALL", f"{PREFIX}workers",
                                                                     NEVER_DECODE=True))[0]
    summary = read_summary(clock, interval_s=10.0)
    read = "the heartbeats (fallback)" if summary.from_beats else f"aggregates, {summary.reporting:,} workers counted"
    rows.append(Row("R", f"operator reads, {size:,} heartbeats: scrape / `status` / `fleet` (median of {RUNS}; "
                         f"summary from {read})",
                    f"{scrape:,.0f} / {status:,.0f} / {fleet:,.0f} ms", goal="< 200 / 1 000 / 2 000 ms",
                    met=scrape < 200 and status < 1000 and fleet < 2000))
    worst = max(total for total, _, _ in served.values())
    rows.append(Row("R", f"operator reads, {size:,} heartbeats: server time per read, scrape / `status` / `fleet` "
                         f"(SLOWLOG: sum of its commands; longest command; commands)",
                    " / ".join(f"{total:.2f} ms ({longest:.2f} ms; {n})" for total, longest, n in served.values()),
                    baseline=f"HGETALL alone: {hgetall_ms:.2f} ms", goal="< 5 ms each", met=worst < 5))
    return rows


def main() -> None:
    """``python -m bench.operator_reads``: figure R alone, on its own embedded server."""
    from .harness import configure_bench_logging
    from .table import render

    configure_bench_logging("INFO")
    bench = BenchServer.start()
    try:
        print(render(operator_reads(bench)))
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
