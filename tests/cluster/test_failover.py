"""Failover: the master owning the {brain} slot is killed under 8 worker processes' traffic.

Measured here (printed with ``-s``): how long each worker answered fail-safe. Each test builds its own
cluster, since killing a master changes the cluster for whoever comes next.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time

from breaker import PanicClock, PanicMode, VIXCircuitBreaker, redis_client
from breaker.clock import parse_start

from .cluster_workers import mixed_traffic
from .valkey_cluster import PROJECT_SLOT, wait_for

PREFIX = "{brain}:"
HEALTHY = (5, "PANIC_PARTIAL")  # medium stakes, 46 min into the panic
FAIL_SAFE = (0, "PANIC_FULL")
WORKERS = 8


def _fail_safe_stretches(answers):
    """(first, last) wall time of each run of fail-safe answers."""
    stretches, first, last = [], None, None
    for at, ttl, mode in answers:
        if (ttl, mode) == FAIL_SAFE:
            first, last = (at if first is None else first), at
        elif first is not None:
            stretches.append((first, last))
            first = None
    if first is not None:
        stretches.append((first, last))
    return stretches


def test_killing_the_slot_owner_fails_safe_then_agrees(own_cluster):
    """8 workers under mixed traffic: during failover every panic answer is (0, PANIC_FULL) and nothing
    raises; once the replica is promoted every worker answers the old start's tier again, all on one start."""
    cluster = own_cluster
    admin = redis_client(cluster.url, timeout_ms=1000)
    now = time.time()
    assert PanicClock(admin, key_prefix=PREFIX).start_drill(now, backdate_s=46 * 60, hold_s=900)
    start = parse_start(admin.get(f"{PREFIX}panic_start_ts"))
    owner = cluster.owner_of_slot(PROJECT_SLOT)
    replica = cluster.ports[3 + cluster.ports.index(owner)]

    ctx = multiprocessing.get_context("spawn")
    ready, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=mixed_traffic, args=(cluster.url, f"worker-{i}", ready, stop, results))
             for i in range(WORKERS)]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=60)
        time.sleep(0.3)  # some healthy traffic before the kill
        with cluster.admin(owner) as node:
            assert node.execute_command("WAIT", 1, 1000) == 1  # the start is on the replica
        killed_at = time.time()
        cluster.kill(owner)
        wait_for(lambda: cluster.owner_of_slot(PROJECT_SLOT) == replica, 30, "replica promoted")
        promoted_at = time.time()
        for _ in procs:
            ready.get(timeout=30)  # each worker answers tier 2 again
        stop.set()
        reports = [results.get(timeout=60) for _ in procs]
    finally:
        stop.set()
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    admin.close()

    assert all(not r["raised"] for r in reports), reports[0]["raised"][:1]
    assert {r["start"] for r in reports} == {start}  # the promoted replica's clock: the replicated start
    durations, recovered = [], []
    for report in reports:
        answers = report["answers"]
        assert {(ttl, mode) for _, ttl, mode in answers} <= {HEALTHY, FAIL_SAFE}
        assert (answers[-1][1], answers[-1][2]) == HEALTHY
        stretches = [s for s in _fail_safe_stretches(answers) if s[1] >= killed_at]
        assert len(stretches) == 1  # one fail-safe stretch, around the failover
        first, last = stretches[0]
        durations.append(last - first)
        recovered.append(min(at for at, ttl, mode in answers if at > last) - killed_at)
    print(f"\nfailover: replica promoted {promoted_at - killed_at:.2f} s after the kill; workers answered "
          f"fail-safe for median {statistics.median(durations):.2f} s, max {max(durations):.2f} s "
          f"(min {min(durations):.2f} s); their first healthy answer came {statistics.median(recovered):.2f} s "
          f"(max {max(recovered):.2f} s) after the kill")


def test_a_start_lost_with_the_master_starts_a_new_clock(own_cluster):
    """A start the replica never received (written while it was cut off from its master) is lost with the
    master: after promotion the next observation starts a new clock, tier 1 again, which fails safe."""
    import os
    import signal

    cluster = own_cluster
    owner = cluster.owner_of_slot(PROJECT_SLOT)
    replica = cluster.ports[3 + cluster.ports.index(owner)]
    replica_pid = cluster.servers[cluster.ports.index(replica)]._process.pid
    client = redis_client(cluster.url, timeout_ms=1000)
    os.kill(replica_pid, signal.SIGSTOP)  # stopped, it cannot reconnect once its link is cut
    try:
        with cluster.admin(owner) as node:
            node.execute_command("CLIENT", "KILL", "TYPE", "replica")  # nothing more is sent to it
        PanicClock(client, key_prefix=PREFIX).start_drill(time.time(), backdate_s=46 * 60, hold_s=900)
        cluster.kill(owner)
    finally:
        os.kill(replica_pid, signal.SIGCONT)
    wait_for(lambda: cluster.owner_of_slot(PROJECT_SLOT) == replica, 30, "replica promoted")
    breaker = VIXCircuitBreaker(client, refresh_interval_s=0, retry_after_s=0)
    answers = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answers.append(breaker.get_ttl(60, "panic", {"stakes": "medium"}))
        if breaker.last_error is None:
            break
        time.sleep(0.05)
    assert breaker.last_error is None
    assert set(answers) == {(0, PanicMode.PANIC_FULL)}  # tier 1 of a new clock, fail-safe while it failed over
    reading = PanicClock(client, key_prefix=PREFIX).read(time.time())
    assert reading.duration_s < 60  # a new clock, not the 46 min one
    client.close()


def test_a_start_lost_with_the_master_shows_as_a_new_epoch(own_cluster):
    """Issue 24: the start (epoch 1) a worker observed is lost with its master, along with the epoch counter's
    INCR. After promotion the worker's next observation starts a new clock whose epoch is 2, not 1 again: the
    worker passes the epoch it knows and the first writer numbers past it; a reader sees the change."""
    import os
    import signal

    cluster = own_cluster
    owner = cluster.owner_of_slot(PROJECT_SLOT)
    replica = cluster.ports[3 + cluster.ports.index(owner)]
    replica_pid = cluster.servers[cluster.ports.index(replica)]._process.pid
    client = redis_client(cluster.url, timeout_ms=1000)
    worker = VIXCircuitBreaker(client, refresh_interval_s=0, retry_after_s=0)
    os.kill(replica_pid, signal.SIGSTOP)
    try:
        with cluster.admin(owner) as node:
            node.execute_command("CLIENT", "KILL", "TYPE", "replica")
        worker.get_ttl(60, "panic")
        assert worker._epoch == 1 and client.get(f"{PREFIX}panic_epoch") == b"1"
        cluster.kill(owner)
    finally:
        os.kill(replica_pid, signal.SIGCONT)
    wait_for(lambda: cluster.owner_of_slot(PROJECT_SLOT) == replica, 30, "replica promoted")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        worker.get_ttl(60, "panic")
        if worker.last_error is None and worker._sync.start is not None:
            break
        time.sleep(0.05)
    assert worker._epoch == 2 and client.get(f"{PREFIX}panic_epoch") == b"2"
    other = VIXCircuitBreaker(client, refresh_interval_s=0)
    other.get_ttl(60, "panic")
    assert other._epoch == 2  # every worker now answers from epoch 2; beats that said 1 show the change
    client.close()
