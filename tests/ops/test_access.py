"""Operator access: sandbox open, real target read-only until login, rate-limited audited logins, audited writes."""

import pytest

from breaker import PanicClock, redis_client
from breaker.ops import (
    AuditTrail,
    LoginRateLimiter,
    WriteRefused,
    attempt_login,
    end_panic,
    force_clear,
    password_matches,
    start_panic,
    write_access,
)
from breaker.ops.actions import run_failsafe_drill, run_multi_worker_drill, run_replay


def test_sandbox_is_open_and_real_target_is_read_only():
    """Embedded server: anyone writes as "sandbox"; REDIS_URL: only a logged-in operator writes."""
    assert write_access(embedded=True, operator=None).allowed
    assert write_access(embedded=True, operator=None).who == "sandbox"
    refused = write_access(embedded=False, operator=None)
    assert not refused.allowed and "read-only" in refused.why_not
    assert write_access(embedded=False, operator="alice").who == "alice"


@pytest.mark.parametrize(("attempt", "expected", "ok"), [
    ("s3cret", "s3cret", True), ("s3cret ", "s3cret", False), ("", "s3cret", False), ("x", None, False),
    ("", "", False), ("pässword", "pässword", True),
])
def test_password_comparison(attempt, expected, ok):
    """Exact match only; no configured password lets nobody in."""
    assert password_matches(attempt, expected) is ok


def test_failed_logins_are_rate_limited_and_audited(real_redis, fake_clock):
    """Five failures lock the client out for the window, even with the right password; each try is audited."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    limiter = LoginRateLimiter(max_failures=5, window_s=300, clock=fake_clock)
    login = lambda pw: attempt_login("mallory", pw, expected="right", limiter=limiter, client_key="ip1", trail=trail)  # noqa: E731
    assert [login("wrong").ok for _ in range(5)] == [False] * 5
    blocked = login("right")
    assert not blocked.ok and blocked.message.startswith("Too many failed logins")
    other_client = attempt_login("bob", "right", expected="right", limiter=limiter, client_key="ip2", trail=trail)
    assert other_client.ok
    fake_clock.advance(301)
    assert login("right").ok
    actions = [e.action for e in trail.entries()]
    assert actions == ["login_failed"] * 5 + ["login_rate_limited", "login", "login"]
    assert {e.kind for e in trail.entries()} == {"login"}


def test_login_needs_a_name_and_a_configured_password(real_redis):
    """No name or no configured password: a clear message, nobody logged in."""
    limiter = LoginRateLimiter()
    assert "name" in attempt_login(" ", "x", expected="x", limiter=limiter, client_key="k", trail=None).message
    assert "BREAKER_OPERATOR_PASSWORD" in attempt_login("a", "x", expected=None, limiter=limiter, client_key="k",
                                                        trail=None).message


def test_write_without_login_is_refused_and_writes_nothing(real_redis, fake_clock):
    """SPEC section 8: a console write without login is refused; no key, no audit entry."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    anonymous = write_access(embedded=False, operator=None)
    for action in (
        lambda: start_panic(clock, trail, anonymous, now=fake_clock(), why="x"),
        lambda: end_panic(clock, trail, anonymous, now=fake_clock(), why="x"),
        lambda: force_clear(clock, trail, anonymous, now=fake_clock(), why="a long enough reason"),
    ):
        with pytest.raises(WriteRefused, match="read-only"):
            action()
    assert real_redis.keys("*") == []


def test_backdated_drill_writes_the_key_and_an_audit_entry(real_redis, fake_clock):
    """A drill 46 min back starts the clock there and audits who, why and the fleet tier."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    alice = write_access(embedded=False, operator="alice")
    result = start_panic(clock, trail, alice, now=fake_clock(), why="game day", backdate_s=46 * 60, hold_s=600)
    assert result.started and result.tier == 3
    reading = clock.read(fake_clock())
    assert reading.duration_s == 46 * 60 and 590 < reading.expiry_left_s <= 600
    [entry] = trail.entries()
    assert (entry.who, entry.action, entry.why, entry.tier) == ("alice", "panic_start", "game day", 3)
    assert entry.detail["hold_until"] == fake_clock() + 600


def test_running_panic_is_not_overwritten_unless_asked(real_redis, fake_clock):
    """A second drill leaves the running clock alone (nothing audited) unless overwrite is set."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    ops = write_access(embedded=True, operator=None)
    start_panic(clock, trail, ops, now=fake_clock(), why="first")
    refused = start_panic(clock, trail, ops, now=fake_clock() + 10, why="second", backdate_s=3600)
    assert not refused.started and refused.running.start == fake_clock()
    assert len(trail.entries()) == 1
    assert start_panic(clock, trail, ops, now=fake_clock() + 10, why="third", backdate_s=3600, overwrite=True).started
    assert clock.read(fake_clock() + 10).start == fake_clock() + 10 - 3600


def test_force_clear_needs_a_reason_and_records_the_verdict(real_redis, fake_clock):
    """Fewer than 10 characters is refused; a real reason clears the clock and audits the zombie reasons."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    ops = write_access(embedded=False, operator="bob")
    real_redis.set(clock.start_key, b"garbage")
    with pytest.raises(ValueError, match="at least 10 characters"):
        force_clear(clock, trail, ops, now=fake_clock(), why="too short")
    assert real_redis.exists(clock.start_key)
    cleared = force_clear(clock, trail, ops, now=fake_clock(), why="stuck since the deploy")
    assert cleared.existed and cleared.verdict.suspect
    assert not real_redis.exists(clock.start_key)
    [entry] = trail.entries()
    assert entry.action == "zombie_clear" and entry.detail["zombie"] is True
    assert any("does not parse" in r for r in entry.detail["reasons"])


def test_end_panic_is_audited(real_redis, fake_clock):
    """Ending the panic deletes the clock and says so in the trail."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    ops = write_access(embedded=True, operator=None)
    start_panic(clock, trail, ops, now=fake_clock(), why="drill")
    assert end_panic(clock, trail, ops, now=fake_clock(), why="drill over")
    assert not clock.read(fake_clock()).exists
    assert [e.action for e in trail.entries()] == ["panic_start", "panic_end"]


def test_refused_logins_are_audited_once_per_lockout(real_redis, fake_clock):
    """Retries during a lockout add one login_rate_limited entry, not one each; the next lockout gets its own."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    limiter = LoginRateLimiter(max_failures=2, window_s=300, clock=fake_clock)
    login = lambda pw: attempt_login("mallory", pw, expected="right", limiter=limiter, client_key="ip1", trail=trail)  # noqa: E731
    login("wrong"), login("wrong")
    for _ in range(500):
        assert login("wrong").message.startswith("Too many failed logins")
        fake_clock.advance(0.1)
    fake_clock.advance(300)
    login("wrong"), login("wrong"), login("wrong"), login("right")
    actions = [e.action for e in trail.entries()]
    assert actions == ["login_failed"] * 2 + ["login_rate_limited"] + ["login_failed"] * 2 + ["login_rate_limited"]


def test_one_operators_wrong_passwords_do_not_lock_out_the_others_behind_the_proxy(real_redis, fake_clock):
    """The limiter counts per (address, name): bob logs in from mallory's address; Mallory in capitals is mallory."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    limiter = LoginRateLimiter(max_failures=5, window_s=300, clock=fake_clock)
    login = lambda who, pw: attempt_login(who, pw, expected="right", limiter=limiter, client_key="proxy", trail=trail)  # noqa: E731
    assert not any(login("mallory", "wrong").ok for _ in range(5))
    assert login(" Mallory ", "right").message.startswith("Too many failed logins")
    assert login("bob", "right").ok


def test_one_address_guessing_many_names_hits_the_address_cap(real_redis, fake_clock):
    """Past the per-address cap every name from that address is refused, audited once for the address."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    limiter = LoginRateLimiter(max_failures=5, window_s=300, clock=fake_clock, max_client_failures=8)
    login = lambda who, pw, ip="ip1": attempt_login(who, pw, expected="right", limiter=limiter, client_key=ip,  # noqa: E731
                                                   trail=trail)
    for i in range(8):
        assert login(f"user{i}", "wrong").message == "Wrong password."
    refusals = [login(f"other{i}", "right") for i in range(20)]
    assert all(r.message.startswith("Too many failed logins") for r in refusals)
    assert login("bob", "right", ip="ip2").ok
    limited = [e for e in trail.entries() if e.action == "login_rate_limited"]
    assert len(limited) == 1 and "8 failed logins from this address" in limited[0].why
    fake_clock.advance(301)
    assert login("bob", "right").ok


def test_limiter_settings_are_checked():
    """A per-address cap below the per-name cap (or no window) is a clear error."""
    with pytest.raises(ValueError, match="max_client_failures >= max_failures"):
        LoginRateLimiter(max_failures=5, max_client_failures=4)
    with pytest.raises(ValueError, match="window_s > 0"):
        LoginRateLimiter(window_s=0)


def test_force_clear_of_a_fed_clock_says_it_was_no_zombie(real_redis, fake_clock):
    """Clearing a clock a worker fed a minute ago reports (and audits) a verdict that is not suspect."""
    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    clock.observe(fake_clock() - 60)
    cleared = force_clear(clock, trail, write_access(embedded=True, operator=None), now=fake_clock(),
                          why="drill is over, clean up")
    assert cleared.existed and not cleared.verdict.suspect
    assert trail.entries()[-1].detail["zombie"] is False


def test_failsafe_drill_is_audited_only_for_writers(real_redis):
    """Read-only visitors may run the fail-safe drill but leave no entry; an operator's run is audited."""
    trail = AuditTrail(real_redis)
    anonymous = run_failsafe_drill(trail, write_access(embedded=False, operator=None), calls=2)
    assert anonymous.result.all_fail_safe and anonymous.audit_error is None and trail.entries() == []
    alice = run_failsafe_drill(trail, write_access(embedded=False, operator="alice"), calls=2)
    [entry] = trail.entries()
    assert (entry.who, entry.action, entry.detail["all_fail_safe"]) == ("alice", "failsafe_drill", True)
    assert alice.audit_error is None


def test_a_drill_whose_audit_fails_still_returns_its_result():
    """Redis refusing the audit entry does not hide the drill's answers: the error comes back beside them."""
    from breaker.ops.drills import unreachable_loopback_url

    trail = AuditTrail(redis_client(unreachable_loopback_url(), timeout_ms=50))
    run = run_failsafe_drill(trail, write_access(embedded=True, operator=None), calls=1)
    assert run.result.all_fail_safe and run.audit_error.startswith("ConnectionError")


def test_multi_worker_drill_and_replay_need_the_right_to_write_and_are_audited(real_redis, redis_url):
    """Read-only: refused before any key is written; an operator's runs each leave one entry."""
    trail = AuditTrail(real_redis)
    anonymous = write_access(embedded=False, operator=None)
    with pytest.raises(WriteRefused, match="multi-worker drill refused"):
        run_multi_worker_drill(trail, anonymous, url=redis_url, client=real_redis, key_prefix="brain:",
                               threads=1, processes=0)
    with pytest.raises(WriteRefused, match="scenario replay refused"):
        run_replay(trail, anonymous, client=real_redis, scenario="sustained", key_prefix="brain:", base_ttl=60,
                   stakes="high_stakes", minutes=30)
    assert real_redis.keys("*") == []
    bob = write_access(embedded=False, operator="bob")
    multi = run_multi_worker_drill(trail, bob, url=redis_url, client=real_redis, key_prefix="brain:",
                                   threads=2, processes=0)
    replay = run_replay(trail, bob, client=real_redis, scenario="sustained", key_prefix="brain:", base_ttl=60,
                        stakes="high_stakes", minutes=30)
    assert multi.result.agreed and [r.end_on_normal for r in replay.result] == [False, True]
    assert [(e.who, e.action) for e in trail.entries()] == [("bob", "multi_worker_drill"), ("bob", "scenario_replay")]
    assert real_redis.keys("*") == [trail.key.encode()]
