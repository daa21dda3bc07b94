"""Operator overrides: set, extend, clear and read, each write atomic with its audit entry, in server time."""

import json

import pytest

from breaker import OverrideMode, PanicClock, Settings
from breaker.ops import (
    AuditTrail,
    NoActiveOverride,
    OverrideTooLong,
    Principal,
    WriteRefused,
    clear_override,
    extend_override,
    read_override,
    set_override,
)
from breaker.ops.overrides import AuditUnwritable
from breaker.override import Override

ALICE = Principal.of("alice")
KEY = "brain:panic_override"


@pytest.fixture
def tools(real_redis):
    return PanicClock(real_redis), AuditTrail(real_redis)


def test_server_now_is_the_servers_time(real_redis):
    """server_now reads TIME: it matches the server's clock whatever the local one says."""
    seconds, micros = real_redis.time()
    assert abs(PanicClock(real_redis).server_now() - (seconds + micros / 1e6)) < 5


def test_set_writes_the_spec_json_with_an_expiry_and_an_audit_entry(real_redis, tools):
    """set_override stores {mode,who,why,since,until} in server time, expiring at until, audited."""
    clock, trail = tools
    override = set_override(clock, trail, ALICE, mode="force_full", minutes=10, why="bad feed")
    stored = json.loads(real_redis.get(KEY))
    assert stored == {"mode": "force_full", "who": "alice", "why": "bad feed", "since": override.since,
                      "until": override.until}
    assert override.until - override.since == 600
    assert 599_000 < real_redis.pttl(KEY) <= 600_000
    [entry] = trail.entries()
    assert (entry.action, entry.who, entry.why) == ("override_set", "alice", "bad feed")
    assert entry.detail["mode"] == "force_full" and entry.detail["until"] == override.until


def test_longer_than_the_maximum_is_refused_and_writes_nothing(real_redis, tools):
    """minutes > max_minutes raises OverrideTooLong (the CLI's exit 3); no key, no audit entry."""
    clock, trail = tools
    with pytest.raises(OverrideTooLong):
        set_override(clock, trail, ALICE, mode="force_calm", minutes=61, why="x")
    with pytest.raises(OverrideTooLong):
        set_override(clock, trail, ALICE, mode="force_calm", minutes=20, why="x", max_minutes=15)
    assert not real_redis.exists(KEY) and trail.entries() == []
    assert Settings.from_env({"BREAKER_MAX_OVERRIDE_MIN": "15"}).max_override_min == 15
    assert Settings.from_env({}).max_override_min == 60


def test_without_the_right_to_write_nothing_is_written(real_redis, tools):
    """A read-only session is refused before anything is written."""
    clock, trail = tools
    with pytest.raises(WriteRefused):
        set_override(clock, trail, Principal.anonymous(), mode="force_full", minutes=1,
                     why="x")
    assert not real_redis.exists(KEY)


def test_extend_moves_the_end_and_is_bounded_from_now(real_redis, tools):
    """extend adds minutes to the end in force, at most max_minutes from now; audited as override_extend."""
    clock, trail = tools
    first = set_override(clock, trail, ALICE, mode="force_calm", minutes=30, why="stuck")
    # sandbox: elsewhere extending force_calm is break-glass (test_approvals) or, under the rule, refused
    extended = extend_override(clock, trail, Principal.of("bob"), minutes=20, why="still stuck", sandbox=True)
    assert extended.until == first.until + 1200 and extended.mode is OverrideMode.FORCE_CALM
    assert extended.who == "bob" and extended.since == first.since
    with pytest.raises(OverrideTooLong):
        extend_override(clock, trail, ALICE, minutes=20, why="too long", sandbox=True)
    assert [e.action for e in trail.entries()] == ["override_set", "override_extend"]
    assert read_override(clock).override == extended


def test_extend_without_an_override_in_force_is_refused(real_redis, tools):
    """Nothing (or only garbage) to extend raises NoActiveOverride and writes nothing."""
    clock, trail = tools
    real_redis.set(KEY, "garbage")
    with pytest.raises(NoActiveOverride):
        extend_override(clock, trail, ALICE, minutes=5, why="x")
    assert trail.entries() == [] and real_redis.get(KEY) == b"garbage"


def test_clear_deletes_and_audits_what_it_cleared(real_redis, tools):
    """clear_override deletes the key, True when there was one; the entry names the cleared mode."""
    clock, trail = tools
    set_override(clock, trail, ALICE, mode="force_full", minutes=5, why="drill")
    assert clear_override(clock, trail, ALICE, why="drill over") is True
    assert not real_redis.exists(KEY)
    entry = trail.entries()[-1]
    assert (entry.action, entry.detail["mode"]) == ("override_clear", "force_full")
    assert clear_override(clock, trail, ALICE, why="again") is False


def test_a_write_whose_audit_entry_cannot_be_written_writes_nothing(real_redis, tools):
    """An audit key of the wrong type stops the override write: both or neither."""
    clock, trail = tools
    real_redis.set("brain:audit", "not a stream")
    with pytest.raises(AuditUnwritable):
        set_override(clock, trail, ALICE, mode="force_full", minutes=5, why="x")
    assert not real_redis.exists(KEY)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("garbage", "JSON"), ('{"mode": "force_normal", "since": 1, "until": 2}', "mode"),
     ('{"mode": "force_calm", "since": 1}', "end"), ('{"mode": "force_calm", "since": 1, "until": 2}', "expired"),
     pytest.param("[" * 2000 + "]" * 2000, "nested", id="nested")],
)
def test_read_flags_invalid_and_expired_values(real_redis, tools, raw, reason):
    """read_override returns no override for garbage, another mode, no end or an expired value, with why."""
    clock, _ = tools
    real_redis.set(KEY, raw)
    reading = read_override(clock)
    assert reading.override is None and reason in reading.invalid_reason and reading.raw == raw.encode()


def test_read_reports_time_left(real_redis, tools):
    """A valid override reads back with its time left in server time."""
    clock, trail = tools
    set_override(clock, trail, ALICE, mode="force_calm", minutes=2, why="x")
    reading = read_override(clock)
    assert reading.override.mode is OverrideMode.FORCE_CALM and 100 < reading.left_s <= 120
    assert reading.invalid_reason is None


def test_read_flags_a_key_of_another_type(real_redis, tools):
    """An override key holding a hash is an unusable override (as workers judge it), not a failed read."""
    clock, _ = tools
    real_redis.hset(KEY, "mode", "force_calm")
    reading = read_override(clock)
    assert reading.override is None and "type" in reading.invalid_reason and reading.raw is not None


def test_read_flags_an_override_that_starts_in_the_future_as_workers_do(real_redis, tools):
    """Review (identity): workers ignore a since more than a minute ahead (test_robust); the console's and CLI's
    reading said it was on, so every view disagreed with the fleet's answers (SPEC section 6, Truth)."""
    clock, _ = tools
    now = clock.server_now()
    real_redis.set(KEY, Override(OverrideMode.FORCE_FULL, "tool", "x", now + 3600, now + 3900).to_json())
    reading = read_override(clock)
    assert reading.override is None and "future" in reading.invalid_reason
    real_redis.set(KEY, Override(OverrideMode.FORCE_FULL, "tool", "x", now + 5, now + 600).to_json())
    assert read_override(clock).override is not None


def test_an_extension_is_honoured_by_workers_whose_cap_counts_from_since(real_redis, tools):
    """Review (ops): workers honour an override only up to `since` + BREAKER_MAX_OVERRIDE_MIN (SPEC section 12),
    and extend kept the first `since`: a 60-minute override extended by 10 minutes after 50 was honoured by no
    worker in its last 10 minutes, while the console, the CLI and the exporter (which silences the tier alerts
    then) showed it in force. An extension that would pass the cap moves `since` up to `until` minus the maximum
    (never after now: an extension ends at most the maximum from now)."""
    import structlog

    from breaker.override import HonouredOverride

    clock, trail = tools
    now = clock.server_now()
    set_at = now - 50 * 60  # set 50 minutes ago for the longest allowed, 60 minutes
    real_redis.set(KEY, Override(OverrideMode.FORCE_FULL, "alice", "feed", set_at, set_at + 3600).to_json(), ex=600)
    extended = extend_override(clock, trail, Principal.of("bob"), minutes=10, why="feed still bad", sandbox=True)
    assert extended.until == set_at + 3600 + 600
    raw = real_redis.get(KEY)
    worker = HonouredOverride(structlog.get_logger, KEY)  # the worker's default cap: 60 minutes from since
    later = now + 15 * 60  # in the extension's last 10 minutes
    worker.adopt(raw, len(raw), later)
    assert worker.mode_at(later) is OverrideMode.FORCE_FULL
    assert set_at <= extended.since <= now


def test_a_hand_written_override_past_the_workers_cap_reads_as_they_answer(real_redis, tools):
    """Review (this round's leftover): workers honour an override at most BREAKER_MAX_OVERRIDE_MIN from its
    `since` (SPEC section 12), but a ten-hour value written by hand read as in force for ten hours in the
    console, `status` and the exporter: every view said force_full while the workers had gone back to the clock.
    Readings now end it where the workers do, keep the stored end beside it, and flag it once past."""
    clock, _ = tools
    now = clock.server_now()
    real_redis.set(KEY, Override(OverrideMode.FORCE_FULL, "hand", "x", now - 600, now + 36_000).to_json())
    reading = read_override(clock, max_s=3600)
    assert reading.override is not None and reading.override.until == now - 600 + 3600
    assert reading.stored_until == now + 36_000 and 2990 < reading.left_s <= 3000
    real_redis.set(KEY, Override(OverrideMode.FORCE_FULL, "hand", "x", now - 7200, now + 36_000).to_json())
    past = read_override(clock, max_s=3600)
    assert past.override is None and "BREAKER_MAX_OVERRIDE_MIN" in past.invalid_reason and past.raw is not None


def test_readings_and_workers_agree_on_a_capped_override_at_every_moment():
    """The same value judged by a worker (HonouredOverride) and by a reading, minute by minute across the cap:
    in force for both, or for neither, and ending at the same time."""
    from breaker.ops.overrides import override_reading
    from breaker.override import HonouredOverride

    class Quiet:
        def warning(self, *a, **k): ...
        def error(self, *a, **k): ...

    since = 1_700_000_000.0
    raw = Override(OverrideMode.FORCE_CALM, "hand", "x", since, since + 5 * 3600).to_json()
    for minute in range(0, 5 * 60, 7):
        now = since + minute * 60
        worker = HonouredOverride(lambda: Quiet(), KEY, max_s=1800)
        worker.adopt(raw, len(raw), now)
        reading = override_reading(raw, now, max_s=1800)
        assert (worker.mode_at(now) is not None) == (reading.override is not None), minute
        if reading.override is not None:
            assert worker.current.until == reading.override.until


def test_extending_a_hand_written_override_extends_what_the_workers_honour(real_redis, tools):
    """Extending a ten-hour value written by hand was refused ("at most 60 minutes from now") although the
    workers honour only its first hour: the extension now counts from the end the workers apply."""
    clock, trail = tools
    now = clock.server_now()
    real_redis.set(KEY, Override(OverrideMode.FORCE_FULL, "hand", "x", now - 600, now + 36_000).to_json())
    extended = extend_override(clock, trail, ALICE, minutes=5, why="longer", max_minutes=60)
    assert abs(extended.until - (now + 3000 + 300)) < 5 and extended.until - extended.since <= 3600
    assert read_override(clock, max_s=3600).stored_until is None
