"""A server killed under load from 8 processes, then restarted empty on the same port."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter

from breaker import parse_start

from .conftest import START_KEY
from .fault_workers import mixed_load

PROCESSES = 8
CALLS_PER_PHASE = 100  # at 2 ms apart: longer than retry_after_s (0.2 s), so each worker probes again


def _wait_for(progress, phase, calls, timeout=60.0):
    deadline = time.monotonic() + timeout
    while min(progress[w * 3 + phase] for w in range(PROCESSES)) < calls:
        assert time.monotonic() < deadline, f"workers stalled in phase {phase}: {list(progress)}"
        time.sleep(0.01)


def test_kill_and_restart_under_load_from_8_processes(fault_server):
    """No exception anywhere, every panic fail-safe while the server is dead, one new start after the restart."""
    fault_server.write_raw(repr(time.time() - 20 * 60), ex=900)  # tier 2 for low stakes before the kill
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES + 1)
    phase = ctx.Value("i", 0)
    progress = ctx.Array("i", PROCESSES * 3)
    stop = ctx.Event()
    results = ctx.Queue()
    workers = [
        ctx.Process(target=mixed_load, args=(fault_server.url, w, barrier, phase, progress, stop, results))
        for w in range(PROCESSES)
    ]
    reports = []
    try:
        for process in workers:
            process.start()
        barrier.wait(timeout=60)
        _wait_for(progress, 0, CALLS_PER_PHASE // 2)

        fault_server.kill()
        phase.value = 1
        _wait_for(progress, 1, CALLS_PER_PHASE)

        restarted_at = time.time()
        phase.value = 2  # before the restart: phase 1 holds only answers given while the server was surely dead
        fault_server.restart()
        _wait_for(progress, 2, 2 * CALLS_PER_PHASE)
        stop.set()
        for _ in workers:
            reports.append(results.get(timeout=60))
    finally:
        stop.set()
        for process in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
    assert all(process.exitcode == 0 for process in workers)

    assert [r["exceptions"] for r in reports] == [[]] * PROCESSES
    down = Counter()
    for report in reports:
        down.update(report["answers"][1])
    assert {(status, ttl, mode) for status, ttl, mode in down} == {("panic", 0, "PANIC_FULL"), ("normal", 60, "NORMAL")}
    before = {key for r in reports for key in r["answers"][0]}
    assert ("panic", 5, "PANIC_PARTIAL") in before, "the real tier was served before the kill"

    for report in reports:
        names = [event for event, _ in report["outage_events"]]
        # One ERROR per outage and one INFO per recovery, alternating. A loaded 2-core machine can add a short
        # outage of its own (a 50 ms read timeout missed), so the count is at least one, not exactly one.
        assert names and names == ["REDIS_UNAVAILABLE", "REDIS_RECOVERED"] * (len(names) // 2)
        during_kill = [event for event, p in report["outage_events"] if p <= 1]
        assert during_kill[-1] == "REDIS_UNAVAILABLE", "the process was in an outage while the server was dead"
        assert ("REDIS_RECOVERED", 2) in report["outage_events"]
    outages = [len(r["outage_events"]) // 2 for r in reports]

    winners = [start for r in reports for start in r["initialized_at"]]
    assert len(winners) == 1, "first writer wins again after the restart"
    agreed = {r["agreed_start"] for r in reports}
    assert agreed == {winners[0]} == {parse_start(fault_server.admin.get(START_KEY))}
    assert winners[0] >= restarted_at, "the old start died with the server; the new clock starts after the restart"
    print(f"killed server: answers while down {dict(down)}; outages per process {outages}; new start {winners[0]}")
