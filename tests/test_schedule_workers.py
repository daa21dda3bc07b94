"""Scheduled windows honoured by real workers (issue 23 phase 2): the schedule step rides in the worker's one round
trip (breaker/refresh.py), so a worker answers a window from its first round trip inside it, on server time.

Workers run with ``refresh_interval_s=0.2`` on real servers; the tests poll with short sleeps and measure each
edge against the server's TIME (sampled before and after each answer).
"""

from __future__ import annotations

import json
import time

import pytest

from breaker import PanicClock, VIXCircuitBreaker
from breaker.client import redis_client
from breaker.ops import AuditTrail, OverrideTooLong
from breaker.ops.roles import Principal
from breaker.ops.schedule import ScheduleRefused, cancel_window, schedule_override
from breaker.override import parse_override
from breaker.policy import PanicMode

INTERVAL = 0.2
SLACK = 0.15  # the poll step, the round trip and a shared machine's scheduling noise
#: How far ahead of the server's TIME a worker's estimate of it may run: the worker pairs the TIME its round trip
#: read with its local time when the round trip began, so it runs ahead by up to the request's way there (a
#: window may start and end that much early). CI saw a window end 0.4 ms early; a loaded machine, tens of ms.
ESTIMATE = 0.05
ALICE = Principal.of("alice", "operator")
BOB = Principal.of("bob", "approver")
OKEY = "brain:panic_override"


def server_now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


@pytest.fixture
def worker_client(server_url):
    client = redis_client(server_url, timeout_ms=1000)
    yield client
    client.close()


def worker(client, **kwargs) -> VIXCircuitBreaker:
    return VIXCircuitBreaker(client, refresh_interval_s=INTERVAL, retry_after_s=INTERVAL, **kwargs)


def plan(client, *, seconds: float, after_s: float, mode: str = "force_full", **kwargs):
    return schedule_override(PanicClock(client), AuditTrail(client), ALICE, mode=mode, minutes=seconds / 60,
                             why="cup final", after_s=after_s, **kwargs)


def sample(client, breaker, until_server: float, status: str = "normal") -> list[tuple[float, float, tuple]]:
    """``(server time before, server time after, answer)`` for answers polled every 20 ms up to ``until_server``."""
    samples = []
    while True:
        before = server_now(client)
        if before >= until_server:
            return samples
        answer = breaker.get_ttl(300, status)
        samples.append((before, server_now(client), answer))
        time.sleep(0.02)


def check_edges(samples, since: float, until: float, normal: tuple) -> tuple[float, float]:
    """Every answer is PANIC_FULL inside [since, until) once the worker's round trip saw it, its normal answer
    outside; returns the measured lag of each edge (server time), each within one refresh interval."""
    full = (0, PanicMode.PANIC_FULL)
    for before, after, answer in samples:
        assert answer in (full, normal), answer
        if answer == full:
            assert after >= since - ESTIMATE and before < until, "a window answered outside itself"
        elif since + INTERVAL + SLACK <= before and after < until - ESTIMATE:
            pytest.fail(f"normal answer {before - since:.3f} s into the window")
        elif until + INTERVAL + SLACK <= before:
            pass
    first_full = min(after for _, after, answer in samples if answer == full)
    first_after = min(after for _, after, answer in samples if answer == normal and after >= until - ESTIMATE)
    start_lag, end_lag = first_full - since, first_after - until
    assert start_lag <= INTERVAL + SLACK and end_lag <= INTERVAL + SLACK, (start_lag, end_lag)
    return start_lag, end_lag


def test_a_worker_answers_panic_full_exactly_inside_a_window(server_redis, worker_client):
    """A force_full window from +3 s lasting 5 s: the worker's normal answer before, (0, PANIC_FULL) inside, its
    normal answer after, each edge within one refresh interval of server time; on Valkey 9 and Redis 7.0."""
    breaker = worker(worker_client)
    normal = breaker.get_ttl(300, "normal")
    assert normal != (0, PanicMode.PANIC_FULL)
    window = plan(server_redis, seconds=5, after_s=3)
    samples = sample(server_redis, breaker, window.until + 0.6)
    start_lag, end_lag = check_edges(samples, window.since, window.until, normal)
    print(f"edges: start {start_lag * 1000:.0f} ms, end {end_lag * 1000:.0f} ms after the window's")
    entries = [(e.action, e.detail.get("window")) for e in AuditTrail(server_redis).entries()]
    assert ("override_window_start", window.id) in entries and ("override_window_end", window.id) in entries
    assert breaker.scheduled_windows_applied == 1


def test_the_v2_reader_of_the_override_sees_the_window_in_force(server_redis, worker_client):
    """What a service reading ``panic_override`` in the v2 format sees while a worker honours the window."""
    breaker = worker(worker_client)
    window = plan(server_redis, seconds=2, after_s=0.3)
    sample(server_redis, breaker, window.since + INTERVAL + SLACK)
    override = parse_override(server_redis.get(OKEY))
    assert (override.mode.value, override.since, override.until) == ("force_full", window.since, window.until)
    assert json.loads(server_redis.get(OKEY))["window"] == window.id
    assert override.until > server_now(server_redis)


def test_back_to_back_windows_and_a_cancel_mid_window(server_redis, worker_client):
    """Two windows, the second starting where the first ends: the worker is in PANIC_FULL in both; at the hand-over
    (the first's override expires at its until, the second is materialized by the next round trip) it may answer
    normally for at most one refresh interval, as at any window's start. Cancelling the second mid-window ends it
    within one refresh interval."""
    breaker = worker(worker_client)
    normal = breaker.get_ttl(300, "normal")
    first = plan(server_redis, seconds=1.5, after_s=0.5)
    second = schedule_override(PanicClock(server_redis), AuditTrail(server_redis), ALICE, mode="force_full",
                               minutes=3 / 60, why="cup final", start=first.until)
    assert second.since == first.until
    samples = sample(server_redis, breaker, second.since + 1.0)
    full = (0, PanicMode.PANIC_FULL)
    assert {answer for _, _, answer in samples} <= {full, normal}
    assert any(answer == full and after < first.until for _, after, answer in samples)
    for before, after, answer in samples:
        if answer == normal and before >= first.since + INTERVAL + SLACK:
            assert first.until - ESTIMATE <= after and before < first.until + INTERVAL + SLACK, before - first.until
    assert json.loads(server_redis.get(OKEY))["window"] == second.id
    cancel_window(PanicClock(server_redis), AuditTrail(server_redis), BOB, window_id=second.id, why="postponed")
    cancelled_at = server_now(server_redis)
    samples = sample(server_redis, breaker, cancelled_at + 0.8)
    first_normal = min(after for _, after, answer in samples if answer == normal)
    assert first_normal - cancelled_at <= INTERVAL + SLACK
    assert all(answer == normal for before, _, answer in samples if before >= cancelled_at + INTERVAL + SLACK)


def test_overlapping_and_too_long_windows_are_refused_and_the_worker_honours_only_the_planned_one(server_redis,
                                                                                                   worker_client):
    breaker = worker(worker_client, max_override_min=1)
    normal = breaker.get_ttl(300, "normal")
    window = plan(server_redis, seconds=1, after_s=0.4)
    with pytest.raises(ScheduleRefused):
        plan(server_redis, seconds=5, after_s=0.2)  # overlaps
    with pytest.raises(OverrideTooLong):
        plan(server_redis, seconds=120, after_s=5, max_minutes=1)
    assert server_redis.zcard("brain:override_schedule") == 1
    samples = sample(server_redis, breaker, window.until + 0.6)
    check_edges(samples, window.since, window.until, normal)


def test_an_unapproved_force_calm_window_is_not_applied_and_audited_skipped(server_redis, worker_client):
    """Under the two-person rule a force_calm window nobody approved: in a panic the worker keeps its panic answer,
    nothing is written to the override key, and the skip is audited once."""
    breaker = worker(worker_client)
    window = plan(server_redis, seconds=1.5, after_s=0.3, mode="force_calm", two_person_rule=True)
    panic = breaker.get_ttl(300, "panic")
    samples = sample(server_redis, breaker, window.until, status="panic")
    assert all(answer[1] is not PanicMode.NORMAL for _, _, answer in samples)
    assert panic[1] is not PanicMode.NORMAL
    assert server_redis.get(OKEY) is None
    actions = [(e.action, e.detail.get("window")) for e in AuditTrail(server_redis).entries()]
    assert actions.count(("override_window_skipped", window.id)) == 1
    assert not any(a == "override_window_start" for a, _ in actions)


def test_a_worker_whose_clock_is_an_hour_off_honours_the_window_on_server_time(server_redis, worker_client):
    breaker = worker(worker_client, clock=lambda: time.time() + 3600)
    normal = breaker.get_ttl(300, "normal")
    window = plan(server_redis, seconds=1.5, after_s=0.5)
    samples = sample(server_redis, breaker, window.until + 0.6)
    check_edges(samples, window.since, window.until, normal)


def test_a_worker_without_server_time_still_materializes_windows_on_server_time(server_redis, worker_client):
    """``server_time=False`` (the worker's own clock for the panic clock): the schedule step still runs on TIME."""
    breaker = worker(worker_client, server_time=False, clock=lambda: time.time() - 3600)
    window = plan(server_redis, seconds=1.5, after_s=0.3)
    sample(server_redis, breaker, window.since + INTERVAL + SLACK)
    assert json.loads(server_redis.get(OKEY))["window"] == window.id


def test_the_round_trips_per_interval_stay_one_with_a_window_applied(server_redis, worker_client):
    """Server-counted (INFO commandstats, which also counts the commands a script runs): across a window's start the
    worker sends at most one EVALSHA per interval; every TIME, ZRANGE (the schedule step) and override read is one
    the script made (as many as EVALSHAs; one more GETRANGE: the step that materialized the window looked for a
    manual override), and no command of the fallback's (GET, MULTI) ran."""
    from breaker import refresh

    breaker = worker(worker_client)
    breaker.get_ttl(300, "normal")
    server_redis.script_load(refresh.SCRIPT)
    window = plan(server_redis, seconds=2, after_s=0.6)
    server_redis.config_resetstat()
    began = time.monotonic()
    while time.monotonic() - began < 1.6:
        breaker.get_ttl(300, "normal")
        time.sleep(0.01)
    elapsed = time.monotonic() - began
    stats = server_redis.info("commandstats")
    calls = {name[len("cmdstat_"):]: v["calls"] for name, v in stats.items()}
    trips = calls["evalsha"]
    assert 1 < trips <= elapsed / INTERVAL + 1, (trips, elapsed)
    assert calls["time"] == trips and calls["zrange"] == trips and calls["getrange"] == trips + 1, calls
    assert not {"get", "multi", "exec", "eval"} & set(calls), calls
    assert json.loads(server_redis.get(OKEY))["window"] == window.id
    assert breaker.get_ttl(300, "normal") == (0, PanicMode.PANIC_FULL)


@pytest.mark.parametrize("bad", ["member", "type"])
def test_a_bad_schedule_member_never_makes_a_worker_fail_safe(server_redis, worker_client, bad):
    """Garbage in the schedule (a member that is no window, or the key of another type): the worker's round trips
    go on (beats written), its answers stay its normal ones, and the step's status says invalid."""
    if bad == "member":
        server_redis.zadd("brain:override_schedule", {b"[" * 3000 + b"]" * 3000: server_now(server_redis) - 1})
    else:
        server_redis.set("brain:override_schedule", "oops")
    breaker = worker(worker_client)
    normal = breaker.get_ttl(300, "normal")
    assert normal[1] is PanicMode.NORMAL
    began = time.monotonic()
    while time.monotonic() - began < 3 * INTERVAL:
        assert breaker.get_ttl(300, "normal") == normal
        time.sleep(0.02)
    assert server_redis.hget("brain:workers", breaker.worker_id) is not None
    assert breaker._schedule_seen == ("invalid", None)


class NoScripting:
    """A client whose user may not script (as behind twemproxy or an ACL user without EVALSHA): the rest passes."""

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name):
        if name in ("evalsha", "eval", "script_load"):
            raise AttributeError(name)
        return getattr(self._client, name)


def test_a_worker_on_the_no_scripting_fallback_honours_a_window_another_worker_materialized(server_redis,
                                                                                            worker_client):
    """The fallback runs no schedule step: alone it never applies a window (it stays planned); once a scripting
    worker's round trip has materialized it, the fallback worker honours it through the override it reads."""
    fallback = worker(NoScripting(worker_client))
    normal = fallback.get_ttl(300, "normal")
    window = plan(server_redis, seconds=2, after_s=0.2)
    sample(server_redis, fallback, window.since + 2 * INTERVAL + SLACK)
    assert server_redis.get(OKEY) is None  # nothing materializes windows without a script
    assert fallback.get_ttl(300, "normal") == normal
    scripting = worker(worker_client)
    scripting.get_ttl(300, "normal")  # its first round trip materializes the window
    assert json.loads(server_redis.get(OKEY))["window"] == window.id
    samples = sample(server_redis, fallback, server_now(server_redis) + INTERVAL + SLACK + 0.1)
    assert samples[-1][2] == (0, PanicMode.PANIC_FULL)


def test_the_worker_that_materializes_a_window_logs_it_once(server_redis, worker_client):
    """SCHEDULED_WINDOW_APPLIED once per window, from the one worker whose round trip wrote it; nothing between
    windows or while the window is in force."""
    from structlog.testing import capture_logs

    first, second = worker(worker_client), worker(worker_client)
    first.get_ttl(300, "normal")
    second.get_ttl(300, "normal")
    window = plan(server_redis, seconds=1.5, after_s=0.3)
    with capture_logs() as logs:
        began = time.monotonic()
        while time.monotonic() - began < 1.2:
            first.get_ttl(300, "normal")
            second.get_ttl(300, "normal")
            time.sleep(0.02)
    applied = [e for e in logs if e["event"] == "SCHEDULED_WINDOW_APPLIED"]
    assert [e["window"] for e in applied] == [window.id]
    assert first.scheduled_windows_applied + second.scheduled_windows_applied == 1
    assert not any(e["event"].startswith("SCHEDULE") and e is not applied[0] for e in logs)
