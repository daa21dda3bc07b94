"""Drills an operator runs to see the breaker's promises hold, never on the live key.

- fail-safe: a breaker pointed at a loopback port nobody listens on answers PANIC_FULL;
- multi-worker: threads and processes start a panic at the same instant in a scratch
  namespace and must agree on one start (first writer wins);
- scenario replay: a signal pattern run through the real ``VIXCircuitBreaker`` on an
  injected clock in a scratch namespace, default mode beside seed mode.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..circuit import VIXCircuitBreaker
from ..client import redact_url, redis_client
from ..clock import PanicClock
from ..policy import MODE_OF_TIER, PanicMode

SCENARIOS = ("sustained", "flickering", "recovering")
MAX_WORKERS = 16
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED_MODE_KEY_TTL_S = 86400
#: The real expiry of a replay's scratch keys. The replay simulates the key's TTL on its injected clock (it ends
#: the scratch clock itself), so Redis's own expiry is only the backstop for a replay that failed before it
#: could delete its namespace (Redis gone mid-replay): minutes, never the simulated 86 400 s of seed mode.
REPLAY_KEY_TTL_S = 300
DRILL_URL_ENV = "BREAKER_DRILL_REDIS_URL"


def scratch_prefix(key_prefix: str, purpose: str) -> str:
    """A fresh namespace under the console's prefix: ``{prefix}{purpose}:{random}:``."""
    return f"{key_prefix}{purpose}:{uuid.uuid4().hex[:10]}:"


def clear_namespace(client: Any, namespace: str) -> None:
    """Delete the keys of a scratch namespace by name (no SCAN over a production keyspace): the clock, and
    the heartbeats and override of the breakers that ran in it."""
    from .fleet_summary import aggregate_keys

    clock = PanicClock(client, key_prefix=namespace)
    client.delete(clock.start_key, clock.last_seen_key, clock.workers_key, clock.override_key, clock.epoch_key)
    client.delete(*aggregate_keys(clock, clock.server_now(), back_s=REPLAY_KEY_TTL_S))


def _cleanup_quietly(client: Any, namespace: str) -> None:
    """Best-effort cleanup on the way out of a failed drill: its own error is the one to report."""
    with contextlib.suppress(Exception):
        clear_namespace(client, namespace)


def unreachable_loopback_url() -> str:
    """A loopback address where nothing listens: the port was free a moment ago and is closed now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@dataclass(frozen=True)
class FailSafeCall:
    call: int
    ttl: int
    mode: str
    latency_ms: float


@dataclass(frozen=True)
class FailSafeDrill:
    target: str
    calls: tuple[FailSafeCall, ...]

    @property
    def all_fail_safe(self) -> bool:
        return all(c.ttl == 0 and c.mode == PanicMode.PANIC_FULL for c in self.calls)

    @property
    def worst_latency_ms(self) -> float:
        return max(c.latency_ms for c in self.calls)


def fail_safe_drill(
    calls: int = 5, *, base_ttl: int = 60, url: str | None = None, timeout_ms: float = 50
) -> FailSafeDrill:
    """Panic calls on a breaker whose Redis is unreachable: each must answer ``(0, PANIC_FULL)`` fast."""
    if not 1 <= calls <= 100:
        raise ValueError(f"calls must be between 1 and 100, got {calls!r}")
    url = url or unreachable_loopback_url()
    client = redis_client(url, timeout_ms=timeout_ms)
    breaker = VIXCircuitBreaker(client)
    results = []
    try:
        for call in range(1, calls + 1):
            began = time.perf_counter()
            ttl, mode = breaker.get_ttl(base_ttl, "panic")
            results.append(FailSafeCall(call, ttl, str(mode), (time.perf_counter() - began) * 1000.0))
    finally:
        client.close()
    return FailSafeDrill(redact_url(url), tuple(results))


@dataclass(frozen=True)
class WorkerStart:
    worker: str
    kind: str  # "thread" or "process"
    start: float | None
    initialized: bool
    error: str | None = None


@dataclass(frozen=True)
class MultiWorkerDrill:
    namespace: str
    workers: tuple[WorkerStart, ...]

    @property
    def distinct_starts(self) -> set[float]:
        return {w.start for w in self.workers if w.start is not None}

    @property
    def agreed(self) -> bool:
        """Every worker answered, all saw the same start, and exactly one of them wrote it."""
        return (
            all(w.error is None for w in self.workers)
            and len(self.distinct_starts) == 1
            and sum(w.initialized for w in self.workers) == 1
        )


def wait_until(instant: float) -> None:
    """Sleep most of the way, then spin: workers released together fire within a millisecond."""
    while (left := instant - time.time()) > 0.002:
        time.sleep(left / 2)
    while time.time() < instant:
        pass


def observe_at(client: object, namespace: str, instant: float) -> dict[str, object]:
    wait_until(instant)
    observation = PanicClock(client, key_prefix=namespace).observe(time.time())
    return {"start": observation.start, "initialized": observation.initialized, "error": None}


def _spawn_worker(url: str, namespace: str, name: str) -> subprocess.Popen[str]:
    """The URL (password included) goes by environment: any local user can read another's command line in
    ``/proc/<pid>/cmdline``, only the owner its environment."""
    env = {**os.environ, DRILL_URL_ENV: url,
           "PYTHONPATH": os.pathsep.join(filter(None, [_PROJECT_ROOT, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "breaker.ops._drill_worker", namespace, name],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )


def _thread_worker(url: str, namespace: str, name: str, ready: threading.Barrier, go: dict[str, float],
                   released: threading.Event, results: list[WorkerStart]) -> None:
    client = redis_client(url, timeout_ms=2000)
    error = None
    try:
        client.ping()
    except Exception as exc:
        error = repr(exc)
    try:
        ready.wait()  # a worker that failed to connect still arrives, so that the others are not held up
        released.wait()
        if error is None:
            outcome = observe_at(client, namespace, go["at"])
            results.append(WorkerStart(name, "thread", outcome["start"], bool(outcome["initialized"])))
        else:
            results.append(WorkerStart(name, "thread", None, False, error))
    except Exception as exc:
        results.append(WorkerStart(name, "thread", None, False, repr(exc)))
    finally:
        client.close()


def multi_worker_drill(
    url: str, client: Any, *, key_prefix: str, threads: int = 4, processes: int = 2, timeout_s: float = 60.0
) -> MultiWorkerDrill:
    """``threads`` threads and ``processes`` processes observe a panic at the same instant.

    Every worker connects and reports ready; then all are given one instant a little ahead
    and fire at it. They race in a scratch namespace (deleted afterwards with ``client``) and
    must agree on one start, written by exactly one of them.
    """
    for name, value in (("threads", threads), ("processes", processes)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WORKERS:
            raise ValueError(f"{name} must be a whole number between 0 and {MAX_WORKERS}, got {value!r}")
    if threads + processes < 2:
        raise ValueError("a multi-worker drill needs at least 2 workers")
    namespace = scratch_prefix(key_prefix, "drill")
    procs = [_spawn_worker(url, namespace, f"process-{i + 1}") for i in range(processes)]
    ready = threading.Barrier(threads + 1, timeout=timeout_s)
    released = threading.Event()
    go: dict[str, float] = {}
    thread_results: list[WorkerStart] = []
    pool = [
        threading.Thread(target=_thread_worker, args=(url, namespace, f"thread-{i + 1}", ready, go, released,
                                                       thread_results), daemon=True)
        for i in range(threads)
    ]
    try:
        for thread in pool:
            thread.start()
        early = {id(proc): proc.stdout.readline() for proc in procs}  # type: ignore[union-attr]
        ready.wait()
        go["at"] = time.time() + 0.05
        released.set()
        process_results = []
        for proc in procs:
            first_line = early[id(proc)]
            if first_line.strip() == "ready":
                out, _ = proc.communicate(f"{go['at']!r}\n", timeout=timeout_s)
            else:  # it failed before getting ready; its first line is its result
                out = first_line + proc.communicate(timeout=timeout_s)[0]
            process_results.append(_process_result(proc.args[-1], out))
        for thread in pool:
            thread.join(timeout_s)
    except BaseException:
        _cleanup_quietly(client, namespace)
        raise
    finally:
        released.set()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    clear_namespace(client, namespace)
    workers = sorted(thread_results, key=lambda w: w.worker) + sorted(process_results, key=lambda w: w.worker)
    return MultiWorkerDrill(namespace, tuple(workers))


def _process_result(name: str, output: str) -> WorkerStart:
    try:
        data = json.loads(output.strip().splitlines()[-1])
        return WorkerStart(name, "process", data["start"], bool(data["initialized"]), data["error"])
    except (ValueError, IndexError, KeyError) as exc:
        return WorkerStart(name, "process", None, False, f"no result from the worker process: {exc!r}")


def scenario_signal(scenario: str, steps: int) -> list[str]:
    """The VIX status at each step: sustained panic, panic flickering with calm every third step,
    or a panic that recovers to calm after 60 % of the run."""
    if scenario == "sustained":
        return ["panic"] * steps
    if scenario == "flickering":
        return ["normal" if i % 3 == 2 else "panic" for i in range(steps)]
    if scenario == "recovering":
        turn = int(steps * 0.6)
        return ["panic" if i < turn else "normal" for i in range(steps)]
    raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")


class _ReplayClock:
    """The injected clock of a replay: time moves by steps, nobody waits."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class ReplayPoint:
    minute: float
    status: str
    ttl: int
    mode: str
    tier: int
    clock_min: float | None  # how long the shared clock says the panic has lasted; None: no clock


@dataclass(frozen=True)
class Replay:
    scenario: str
    end_on_normal: bool
    points: tuple[ReplayPoint, ...]

    @property
    def label(self) -> str:
        return "seed mode (end_on_normal)" if self.end_on_normal else "default (calm period)"


def replay_scenario(
    client: Any,
    scenario: str,
    *,
    key_prefix: str,
    end_on_normal: bool = False,
    base_ttl: int = 60,
    match_context: Mapping[str, Any] | None = None,
    minutes: int = 240,
    step_s: int = 60,
    panic_key_ttl_s: int | None = None,
    start_at: float = 1_800_000_000.0,
) -> Replay:
    """Run ``scenario`` through a real breaker on an injected clock in a scratch namespace.

    Redis expires keys on its own wall clock, which a replay does not move; the replay
    therefore deletes the scratch clock itself once no panic was observed for the key's
    TTL, exactly when the server would have expired it.
    """
    if not 1 <= minutes <= 24 * 60 or not 1 <= step_s <= 3600:
        raise ValueError(f"minutes must be 1..1440 and step_s 1..3600, got {minutes!r}, {step_s!r}")
    key_ttl = panic_key_ttl_s or (SEED_MODE_KEY_TTL_S if end_on_normal else 900)
    namespace = scratch_prefix(key_prefix, "replay")
    clock = _ReplayClock(start_at)
    breaker = VIXCircuitBreaker(
        client, key_prefix=namespace, panic_key_ttl_s=REPLAY_KEY_TTL_S, end_on_normal=end_on_normal,
        refresh_interval_s=0, retry_after_s=0, clock=clock, server_time=False)
    panic_clock = PanicClock(client, key_prefix=namespace, panic_key_ttl_s=REPLAY_KEY_TTL_S)
    points = []
    last_panic_at: float | None = None
    try:
        for step, status in enumerate(scenario_signal(scenario, minutes * 60 // step_s)):
            clock.now = start_at + step * step_s
            if last_panic_at is not None and clock.now - last_panic_at >= key_ttl:
                panic_clock.end()
                last_panic_at = None
            ttl, mode = breaker.get_ttl(base_ttl, status, dict(match_context or {}))
            if breaker.last_error is not None:  # a fail-safe answer here is an outage, not the scenario
                raise RuntimeError(f"replay stopped at minute {step * step_s / 60:g}: {breaker.last_error}")
            if status == "panic":
                last_panic_at = clock.now
                client.expire(panic_clock.epoch_key, REPLAY_KEY_TTL_S)  # the counter has no expiry of its own
            reading = panic_clock.read(clock.now)
            duration = reading.duration_s
            points.append(ReplayPoint(
                step * step_s / 60.0, status, ttl, str(mode), MODE_OF_TIER.index(PanicMode(mode)),
                None if duration is None else duration / 60.0,
            ))
    except BaseException:
        _cleanup_quietly(client, namespace)
        raise
    clear_namespace(client, namespace)
    return Replay(scenario, end_on_normal, tuple(points))
