"""Pre-fork hosts (gunicorn --preload, Celery prefork, multiprocessing): a child forked from a parent that
already used the breaker gets its own worker id, its own connection and a clean round-trip state, with
nothing for the host to do (issue 25). Real server; children exit with os._exit, never through pytest."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time

import pytest

from breaker import VIXCircuitBreaker, redis_client
from tests.conftest import FakeClock

KEY = "brain:panic_start_ts"
LOW = {"stakes": "low"}
PARTIAL = [5, "PANIC_PARTIAL"]  # a 20-minute panic, low stakes: tier 2
CHILDREN = 8

_BREAKER: VIXCircuitBreaker | None = None  # what a multiprocessing child inherits


def server_now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def _answer_once(breaker: VIXCircuitBreaker) -> str:
    ttl, mode = breaker.get_ttl(60, "panic", LOW)
    return json.dumps({"id": breaker.worker_id, "answer": [ttl, str(mode)], "pid": os.getpid()})


def _fork(body) -> tuple[int, int]:
    """Fork a child that runs ``body()`` and writes its text to a pipe; (pid, read end)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(read)
            os.write(write, body().encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def _collect(pid: int, read: int) -> dict:
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and text, "the child failed"
    return json.loads(text)


@pytest.fixture
def panicking(real_redis):
    real_redis.set(KEY, repr(server_now(real_redis) - 20 * 60), ex=900)
    return real_redis


def _check_children(real_redis, parent: VIXCircuitBreaker, results: list[dict]) -> None:
    assert [r["answer"] for r in results] == [PARTIAL] * CHILDREN
    ids = {r["id"] for r in results}
    assert len(ids) == CHILDREN and parent.worker_id not in ids
    assert all(f":{r['pid']}:" in r["id"] for r in results)
    workers = {k.decode() for k in real_redis.hkeys("brain:workers")}
    assert ids <= workers, "every child beats under its own id"


def test_children_of_os_fork_are_eight_workers(panicking, redis_url):
    parent = VIXCircuitBreaker(redis_client(redis_url, timeout_ms=1000))
    assert parent.get_ttl(60, "panic", LOW) == tuple(PARTIAL)  # the parent answered: state, id and connection
    children = [_fork(lambda: _answer_once(parent)) for _ in range(CHILDREN)]
    _check_children(panicking, parent, [_collect(pid, read) for pid, read in children])
    assert parent.get_ttl(60, "panic", LOW) == tuple(PARTIAL)  # the parent's own connection is untouched


def _mp_child(queue) -> None:
    queue.put(_answer_once(_BREAKER))


def test_children_of_multiprocessing_fork_are_eight_workers(panicking, redis_url):
    global _BREAKER
    _BREAKER = parent = VIXCircuitBreaker(redis_client(redis_url, timeout_ms=1000))
    try:
        assert parent.get_ttl(60, "panic", LOW) == tuple(PARTIAL)
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        processes = [context.Process(target=_mp_child, args=(queue,)) for _ in range(CHILDREN)]
        for process in processes:
            process.start()
        results = [json.loads(queue.get(timeout=20)) for _ in processes]
        for process in processes:
            process.join(timeout=20)
            assert process.exitcode == 0
        _check_children(panicking, parent, results)
    finally:
        _BREAKER = None


def test_a_child_forked_mid_round_trip_answers_normally(panicking, redis_url):
    """The parent's round trip hangs on a paused server when the child is forked: the child (its clock moved
    past the parent's stale grace) makes its own round trip and answers tier 2, not TTL 0 forever."""
    clock = FakeClock(time.time())
    parent = VIXCircuitBreaker(redis_client(redis_url, timeout_ms=3000), clock=clock, refresh_interval_s=0)
    assert parent.get_ttl(60, "panic", LOW) == tuple(PARTIAL)
    admin = redis_client(redis_url, timeout_ms=1000)
    admin.execute_command("CLIENT", "PAUSE", 800, "ALL")
    in_flight = threading.Thread(target=parent.get_ttl, args=(60, "panic", LOW))
    in_flight.start()
    deadline = time.monotonic() + 2
    while not parent.panic_clock._lane._lock.locked() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert parent.panic_clock._lane._lock.locked(), "the parent's round trip is in flight"

    def child() -> str:
        clock.advance(10)  # long after the parent's round trip would have ended
        answers = []
        until = time.monotonic() + 4
        while time.monotonic() < until:
            answers.append(list(parent.get_ttl(60, "panic", LOW)))
            if answers[-1] == PARTIAL:
                break
            time.sleep(0.02)
        return json.dumps({"answers": answers, "id": parent.worker_id})

    pid, read = _fork(child)
    in_flight.join(timeout=5)
    result = _collect(pid, read)
    admin.close()
    assert result["answers"][-1] == PARTIAL, result["answers"][:5]
    assert result["id"] != parent.worker_id


def test_a_forked_childs_metrics_still_count(panicking, redis_url):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    parent = VIXCircuitBreaker(redis_client(redis_url, timeout_ms=1000), metrics=registry)
    parent.get_ttl(60, "panic", LOW)

    labels = {"mode": "PANIC_PARTIAL", "stakes": "low_stakes"}

    def child() -> str:
        before = registry.get_sample_value("vix_breaker_answers_total", labels)
        parent.get_ttl(60, "panic", LOW)
        after = registry.get_sample_value("vix_breaker_answers_total", labels)
        return json.dumps({"grew": after - before})

    pid, read = _fork(child)
    assert _collect(pid, read)["grew"] == 1
