"""Issue 14 finding 3: a panic-clock write and its audit entry happen in one transaction, or neither happens."""

import pytest
from redis.exceptions import ResponseError

from breaker import PanicClock
from breaker.ops import AuditTrail, Principal, end_panic, force_clear, start_panic

ALICE = Principal.of("alice")


def _writes(clock, trail, now):
    return {
        "start": lambda: start_panic(clock, trail, ALICE, now=now, why="drill", backdate_s=60, hold_s=600,
                                     overwrite=True),
        "end": lambda: end_panic(clock, trail, ALICE, now=now, why="drill over"),
        "clear": lambda: force_clear(clock, trail, ALICE, now=now, why="stuck since the deploy"),
    }


@pytest.mark.parametrize("action", ["start", "end", "clear"])
def test_user_without_xadd_writes_nothing(acl_user, client_for, real_redis, fake_clock, action):
    """An ACL user that may not XADD: the write is refused with the audit entry, the clock is untouched."""
    client = client_for(acl_user("noxadd", "pw-noxadd", "+@all", "-xadd"))
    real_redis.set("brain:panic_start_ts", "1700000000.0", ex=900)
    clock, trail = PanicClock(client), AuditTrail(client)
    with pytest.raises(ResponseError):
        _writes(clock, trail, fake_clock())[action]()
    assert real_redis.get("brain:panic_start_ts") == b"1700000000.0"
    assert real_redis.xlen(trail.key) == 0


@pytest.mark.parametrize("action", ["start", "end", "clear"])
def test_unwritable_audit_key_writes_nothing(real_redis, fake_clock, action):
    """The audit key holds a string (XADD would fail inside EXEC): refused before anything is written."""
    real_redis.set("brain:panic_start_ts", "1700000000.0", ex=900)
    real_redis.set("brain:audit", "not a stream")
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    with pytest.raises(ResponseError):
        _writes(clock, trail, fake_clock())[action]()
    assert real_redis.get("brain:panic_start_ts") == b"1700000000.0"


def test_start_end_clear_each_add_one_entry_with_the_write(real_redis, fake_clock):
    """With a working audit, each write lands together with exactly one entry."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    writes = _writes(clock, trail, fake_clock())
    assert writes["start"]().started and clock.read(fake_clock()).duration_s == 60
    assert writes["end"]() is True and not clock.read(fake_clock()).exists
    writes["start"]()
    assert writes["clear"]().existed and not clock.read(fake_clock()).exists
    assert [e.action for e in trail.entries()] == ["panic_start", "panic_end", "panic_start", "zombie_clear"]


def test_operator_writes_succeed_while_workers_append_state_changes(redis_url, real_redis):
    """A fleet's state-change listeners append to the audit stream at a tier change (hundreds of XADDs a
    second); operators' writes during that burst still land, each with its own entry, not 'changed by others'."""
    import threading
    import time

    from breaker import redis_client
    from breaker.ops.approvals import request_force_calm
    from breaker.ops.overrides import clear_override, extend_override, set_override

    stop = threading.Event()

    def fleet_listeners():
        appender = redis_client(redis_url, timeout_ms=1000)
        while not stop.is_set():
            appender.xadd("brain:audit", {"kind": "state_change", "who": "worker", "action": "state_change"},
                          maxlen=10_000, approximate=True)
            time.sleep(0.0005)
        appender.close()

    burst = threading.Thread(target=fleet_listeners)
    burst.start()
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    try:
        for _ in range(20):
            set_override(clock, trail, ALICE, mode="force_full", minutes=5, why="burst")
            extend_override(clock, trail, ALICE, minutes=1, why="burst")
            clear_override(clock, trail, ALICE, why="burst")
            start_panic(clock, trail, ALICE, now=clock.server_now(), why="burst", overwrite=True)
        request_force_calm(clock, trail, ALICE, minutes=5, why="burst")
    finally:
        stop.set()
        burst.join(10)
    operator = [e for e in trail.entries(10_000) if e.kind != "state_change"]
    assert len(operator) == 81
