"""One body, two clients: the clock protocol and the overrides behave the same on fakeredis and on a real server.

Teams unit-test their services with ``fakeredis.FakeRedis()``; these tests are the promise that what they see
there is what the fleet does on Redis (README "Testing your service" shows the fixture).
"""

from __future__ import annotations

import fakeredis
import pytest

from breaker import PanicClock, VIXCircuitBreaker
from breaker.ops.audit import AuditTrail
from breaker.ops.fleet import read_fleet
from breaker.ops.overrides import OverrideTooLong, clear_override, extend_override, read_override, set_override
from breaker.ops.roles import Principal

START_KEY = "brain:panic_start_ts"


@pytest.fixture(params=["fakeredis", "real server"])
def client(request):
    """The same tests on an in-process fakeredis and on the session's real Valkey server."""
    if request.param == "fakeredis":
        fake = fakeredis.FakeRedis()
        yield fake
        fake.close()
    else:
        yield request.getfixturevalue("real_redis")


def test_first_writer_wins_and_everyone_agrees(client, fake_clock):
    """Two workers observing a panic at different times share the first one's start."""
    first = VIXCircuitBreaker(client, clock=fake_clock, server_time=False)
    first.get_ttl(60, "panic")
    start = fake_clock()
    fake_clock.advance(5)
    second = VIXCircuitBreaker(client, clock=fake_clock, server_time=False)
    second.get_ttl(60, "panic")
    assert float(client.get(START_KEY)) == start
    assert PanicClock(client).read(fake_clock()).start == start


def test_server_time_is_the_default_on_both(client):
    """With the default server_time=True the start is written in the server's clock (TIME), on both clients."""
    breaker = VIXCircuitBreaker(client)
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert abs(float(client.get(START_KEY)) - PanicClock(client).server_now()) < 5


def test_tiers_advance_with_the_shared_clock(client, fake_clock):
    """Low stakes: tier 1 at the start, tier 2 after 15 min, tier 3 after 45, tier 4 after 90."""
    breaker = VIXCircuitBreaker(client, clock=fake_clock, server_time=False)
    answers = []
    for minutes in (0, 15, 30, 45, 90):
        fake_clock.now = 1_800_000_000.0 + minutes * 60
        answers.append(breaker.get_ttl(60, "panic", {"league": "Ligue 2"}))
    assert answers == [(0, "PANIC_FULL"), (5, "PANIC_PARTIAL"), (5, "PANIC_PARTIAL"), (20, "DEGRADED"),
                       (45, "NEW_NORMAL")]


def test_observation_sets_the_calm_period_and_calm_calls_write_nothing(client, fake_clock):
    """A panic observation (re)sets the key's expiry to the calm period; calm answers alone leave the key alone."""
    breaker = VIXCircuitBreaker(client, clock=fake_clock, refresh_interval_s=0, server_time=False)
    breaker.get_ttl(60, "panic")
    client.persist(START_KEY)
    breaker.get_ttl(60, "panic")
    assert 899 <= client.ttl(START_KEY) <= 900
    breaker.get_ttl(60, "normal")  # the round trip after a panic answer still reports that panic
    client.persist(START_KEY)
    for _ in range(10):
        assert breaker.get_ttl(60, "normal") == (60, "NORMAL")
    assert client.ttl(START_KEY) == -1


@pytest.mark.parametrize("stored", [b"garbage", b"nan", b"-5", b"inf"])
def test_unusable_values_are_replaced_and_answer_tier_1(client, fake_clock, stored):
    """Garbage, NaN, negative, infinite: replaced by now, and that call answers tier 1."""
    client.set(START_KEY, stored)
    breaker = VIXCircuitBreaker(client, clock=fake_clock, server_time=False)
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (0, "PANIC_FULL")
    assert float(client.get(START_KEY)) == fake_clock()


def test_wrong_type_at_the_key_is_replaced(client, fake_clock):
    """A hash where the timestamp should be is replaced by a timestamp; never NORMAL during a panic."""
    client.hset(START_KEY, "x", "y")
    assert VIXCircuitBreaker(client, clock=fake_clock, server_time=False).get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert float(client.get(START_KEY)) == fake_clock()


def test_seed_mode_deletes_on_calm(client, fake_clock):
    """end_on_normal=True: a calm call deletes the clock, the next panic starts a new one."""
    breaker = VIXCircuitBreaker(client, clock=fake_clock, end_on_normal=True, refresh_interval_s=0,
                                server_time=False)
    breaker.get_ttl(60, "panic")
    breaker.get_ttl(60, "normal")
    assert client.exists(START_KEY) == 0
    fake_clock.advance(30)
    breaker.get_ttl(60, "panic")
    assert float(client.get(START_KEY)) == fake_clock()


def test_a_drill_does_not_overwrite_a_running_panic(client, fake_clock):
    """start_drill refuses a running clock unless overwrite; then the back-dated start wins."""
    clock = PanicClock(client)
    clock.observe(fake_clock())
    assert clock.start_drill(fake_clock(), backdate_s=600) is False
    assert clock.start_drill(fake_clock(), backdate_s=600, overwrite=True) is True
    assert float(client.get(START_KEY)) == fake_clock() - 600


def test_overrides_set_extend_clear_with_audit(client):
    """Set, extend and clear an override: stored SPEC 7 JSON, server-time ends, one audit entry per write."""
    clock, trail, access = PanicClock(client), AuditTrail(client), Principal.of("ops")
    written = set_override(clock, trail, access, mode="force_calm", minutes=10, why="signal stuck")
    reading = read_override(clock)
    assert reading.override == written and 599 <= reading.left_s <= 600
    assert 0 < client.pttl("brain:panic_override") <= 600_000
    extended = extend_override(clock, trail, access, minutes=5, why="still stuck", sandbox=True)  # no break-glass
    assert extended.until == pytest.approx(written.until + 300)
    with pytest.raises(OverrideTooLong):
        set_override(clock, trail, access, mode="force_full", minutes=61, why="too long")
    assert clear_override(clock, trail, access, why="fixed") is True
    assert read_override(clock).override is None
    assert [e.action for e in trail.entries()] == ["override_set", "override_extend", "override_clear"]


def test_garbage_override_is_ignored_never_calm(client):
    """An override that does not parse reads as none, with the reason, on both clients."""
    client.set("brain:panic_override", '{"mode": "force_calm", "who": "x", "why": "y", "since": 1}')
    reading = read_override(PanicClock(client))
    assert reading.override is None and reading.invalid_reason


def test_fleet_view_reads_in_one_transaction(client, fake_clock):
    """read_fleet sees the clock and an empty fleet the same way on both clients."""
    PanicClock(client).observe(fake_clock())
    view = read_fleet(PanicClock(client))
    assert view.reading.start == fake_clock() and view.workers == [] and sum(view.counts.values()) == 0


def test_readme_fixture_runs_as_written(tmp_path):
    """The "Testing your service" fixture in the README passes when a team copies it into its own tests."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    section = (root / "README.md").read_text().split("## Testing your service", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "test_copied.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           str(tmp_path / "test_copied.py"), "--rootdir", str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
