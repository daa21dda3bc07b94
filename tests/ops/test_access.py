"""Operator access: sandbox open, real target read-only until login, slowed and audited logins, audited writes."""

import pytest

from breaker import PanicClock, redis_client
from breaker.ops import (
    AuditTrail,
    Credentials,
    LoginThrottle,
    Principal,
    WriteRefused,
    attempt_login,
    end_panic,
    force_clear,
    oidc_operator,
    password_matches,
    start_panic,
    write_access,
)
from breaker.ops.access import UNVERIFIED_NAME
from breaker.ops.actions import run_failsafe_drill, run_multi_worker_drill, run_replay
from breaker.ops.credentials import hash_password
from breaker.ops.login_throttle import FREE_PER_NAME, FREE_PER_NAME_GLOBAL, delay_after


def test_sandbox_is_open_and_real_target_is_read_only():
    """Embedded server: anyone writes as "sandbox"; REDIS_URL: only a logged-in operator writes."""
    assert write_access(embedded=True, operator=None).allowed
    assert write_access(embedded=True, operator=None).who == "sandbox"
    refused = write_access(embedded=False, operator=None)
    assert not refused.allowed and "read-only" in refused.why_not
    assert write_access(embedded=False, operator=Principal.of("alice")).who == "alice"


@pytest.mark.parametrize(("attempt", "expected", "ok"), [
    ("s3cret", "s3cret", True), ("s3cret ", "s3cret", False), ("", "s3cret", False), ("x", None, False),
    ("", "", False), ("pässword", "pässword", True),
])
def test_password_comparison(attempt, expected, ok):
    """Exact match only; no configured password lets nobody in."""
    assert password_matches(attempt, expected) is ok


SHARED = Credentials(shared_password="right")


def _login(real_redis, fake_clock, trail, credentials=SHARED):
    throttle = LoginThrottle(real_redis, clock=fake_clock)
    return lambda who, pw, ip="ip1": attempt_login(who, pw, credentials=credentials, throttle=throttle,
                                                   client_key=ip, trail=trail)


def test_failed_logins_are_slowed_down_and_audited(real_redis, fake_clock):
    """Past the free failures each wrong password doubles the wait; even the right password waits; all audited."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    login = _login(real_redis, fake_clock, trail)
    assert [login("mallory", "wrong").message for _ in range(FREE_PER_NAME + 1)] == ["Wrong password."] * 4
    blocked = login("mallory", "right")
    assert not blocked.ok and blocked.message == "Too many failed logins: try again in 1 s."
    assert login("bob", "right", ip="ip2").ok
    fake_clock.advance(1)
    assert login("mallory", "wrong").message == "Wrong password."
    assert login("mallory", "right").message == "Too many failed logins: try again in 2 s."
    fake_clock.advance(2)
    assert login("mallory", "right").ok
    actions = [e.action for e in trail.entries()]
    assert actions == ["login_failed"] * 4 + ["login_rate_limited", "login"] + ["login_failed", "login_rate_limited",
                                                                               "login"]
    assert {e.kind for e in trail.entries()} == {"login"}


def test_delays_grow_to_a_cap_and_never_lock_out():
    """No delay for the free failures, then 1, 2, 4 s ... and never more than the cap."""
    assert [delay_after(n, 3, 300) for n in range(0, 8)] == [0, 0, 0, 0, 1, 2, 4, 8]
    assert delay_after(10_000, 3, 300) == 300


def test_the_throttle_lives_in_redis_and_survives_a_new_instance(real_redis, fake_clock):
    """Another console replica (another LoginThrottle on the same Redis) sees the same delays."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    for _ in range(FREE_PER_NAME + 1):
        _login(real_redis, fake_clock, trail)("mallory", "wrong")
    replica = _login(real_redis, fake_clock, trail)
    assert replica("mallory", "right").message.startswith("Too many failed logins")
    assert all(b"mallory" not in key and b"ip1" not in key for key in real_redis.keys("*"))


def test_other_names_failures_never_slow_an_operator_behind_the_same_address(real_redis, fake_clock):
    """Hundreds of wrong passwords under other names from alice's address leave her free to log in."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    credentials = Credentials({"alice": hash_password("alice-pw")}, shared_password="right")
    login = _login(real_redis, fake_clock, trail, credentials)
    for i in range(200):
        fake_clock.advance(1)
        login(f"user{i % 7}", "wrong")
    assert login("alice", "alice-pw").ok
    limited = [e for e in trail.entries() if e.action == "login_rate_limited"]
    assert limited


def test_failed_login_names_are_recorded_only_for_operators(real_redis, fake_clock):
    """Issue 14 finding 6: a failed login under a name that is no operator's does not record the typed text."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    credentials = Credentials({"alice": hash_password("alice-pw")}, shared_password="right")
    login = _login(real_redis, fake_clock, trail, credentials)
    login("hunter2", "wrong")
    login("ALICE", "wrong")
    assert [(e.who, e.action) for e in trail.entries()] == [(UNVERIFIED_NAME, "login_failed"),
                                                            ("alice", "login_failed")]


def test_per_operator_hash_verifies_and_shared_password_is_self_declared(real_redis, fake_clock):
    """alice logs in with her own hash (verified); bob with the shared one (self-declared); alice not with it."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    credentials = Credentials({"alice": hash_password("alice-pw")}, shared_password="right")
    login = _login(real_redis, fake_clock, trail, credentials)
    alice = login("Alice", "alice-pw")
    assert alice.ok and alice.operator == Principal.of("alice", "operator", "password") and alice.operator.verified
    bob = login("bob", "right")
    assert bob.ok and not bob.operator.verified and bob.operator.who == "bob (self-declared)"
    assert not login("alice", "right").ok
    assert write_access(embedded=False, operator=bob.operator).who == "bob (self-declared)"
    assert write_access(embedded=False, operator=alice.operator).verified
    assert [e.who for e in trail.entries()] == ["alice", "bob (self-declared)", "alice"]


@pytest.mark.parametrize(("user", "allowed"), [
    ({"is_logged_in": True, "email": "ops@example.com"}, True),
    ({"is_logged_in": True, "email": "Carol@Brainlab.example"}, True),
    ({"is_logged_in": True, "email": "mallory@evil.example"}, False),
    ({"is_logged_in": True, "email": "x@sub.brainlab.example"}, False),
    ({"is_logged_in": True, "email": "ops@example.com", "email_verified": False}, False),
    ({"is_logged_in": True}, False),
    ({"is_logged_in": False, "email": "ops@example.com"}, False),
])
def test_oidc_allow_list(user, allowed):
    """Issue 14 finding 4: OIDC identities write only when BREAKER_OPERATORS names the email or its domain."""
    operator, _ = oidc_operator(user, ("ops@example.com", "@brainlab.example"))
    assert (operator is not None) is allowed
    assert oidc_operator(user, ())[0] is None


def test_login_needs_a_name_and_configured_credentials(real_redis):
    """No name or no credentials at all: a clear message, nobody logged in."""
    throttle = LoginThrottle(real_redis)
    assert "name" in attempt_login(" ", "x", credentials=SHARED, throttle=throttle, client_key="k", trail=None).message
    assert "BREAKER_OPERATOR_PASSWORD" in attempt_login("a", "x", credentials=Credentials(), throttle=throttle,
                                                        client_key="k", trail=None).message


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
    alice = Principal.of("alice")
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
    ops = Principal.of("bob")
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


def test_refused_logins_are_audited_once_per_delay(real_redis, fake_clock):
    """Retries during a delay add one login_rate_limited entry, not one each; the next delay gets its own."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    login = _login(real_redis, fake_clock, trail)
    for _ in range(FREE_PER_NAME + 1):
        login("mallory", "wrong")
    for _ in range(5):
        assert login("mallory", "wrong").message.startswith("Too many failed logins")
        fake_clock.advance(0.1)
    fake_clock.advance(1)
    login("mallory", "wrong"), login("mallory", "wrong")
    actions = [e.action for e in trail.entries()]
    assert actions == ["login_failed"] * 4 + ["login_rate_limited", "login_failed", "login_rate_limited"]


def test_one_operators_wrong_passwords_do_not_slow_the_others_behind_the_proxy(real_redis, fake_clock):
    """Delays count per (address, name): bob logs in from mallory's address; Mallory in capitals is mallory."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    login = _login(real_redis, fake_clock, trail)
    assert not any(login("mallory", "wrong", ip="proxy").ok for _ in range(FREE_PER_NAME + 1))
    assert login(" Mallory ", "right", ip="proxy").message.startswith("Too many failed logins")
    assert login("bob", "right", ip="proxy").ok


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
    alice = run_failsafe_drill(trail, Principal.of("alice"), calls=2)
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
    bob = Principal.of("bob")
    multi = run_multi_worker_drill(trail, bob, url=redis_url, client=real_redis, key_prefix="brain:",
                                   threads=2, processes=0)
    replay = run_replay(trail, bob, client=real_redis, scenario="sustained", key_prefix="brain:", base_ttl=60,
                        stakes="high_stakes", minutes=30)
    assert multi.result.agreed and [r.end_on_normal for r in replay.result] == [False, True]
    assert [(e.who, e.action) for e in trail.entries()] == [("bob", "multi_worker_drill"), ("bob", "scenario_replay")]
    assert real_redis.keys("*") == [trail.key.encode()]


OPERATORS = Credentials({"alice": hash_password("alice-pw"), "carol": hash_password("carol-pw")},
                        shared_password="right")


def test_finding_4_a_guesser_re_arming_the_wait_keeps_nobody_else_behind_the_address_out(real_redis, fake_clock):
    """Issue 19 finding 4: a guesser at one address fails as soon as each wait ends (re-arming it, for 70 s
    and beyond); 13 real logins from that same address, by operators the guesser does not target and by a
    self-declared name, all succeed at once."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    login = _login(real_redis, fake_clock, trail, OPERATORS)
    assert login("bob", "right", ip="office").ok  # bob has logged in from the office before
    successes = 0
    for second in range(70):
        fake_clock.advance(1)
        for name in ("mallory", "admin", "root"):
            login(name, f"guess {second}", ip="office")  # re-arms whatever wait has just ended
        if second % 5 == 0 and second < 65:
            who, password = [("alice", "alice-pw"), ("carol", "carol-pw"), ("bob", "right")][second % 3]
            successes += login(who, password, ip="office").ok
    assert successes == 13


def test_finding_5_guesses_against_one_name_are_bounded_across_rotating_ipv6_addresses(real_redis, fake_clock):
    """Issue 19 finding 5: each guess from a new IPv6 /64 used to get the per-address free failures again, so
    guesses against alice were unbounded. Now alice's name has its own budget across all addresses; addresses
    in one /64 are one address; alice's own usual address is not slowed by the guessing."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    login = _login(real_redis, fake_clock, trail, OPERATORS)
    assert login("alice", "alice-pw", ip="2001:db8:a11c::1").ok
    outcomes = [login("alice", f"guess {i}", ip=f"2001:db8:{i:x}::1").message for i in range(60)]
    assert outcomes[:FREE_PER_NAME_GLOBAL] == ["Wrong password."] * FREE_PER_NAME_GLOBAL
    assert outcomes[FREE_PER_NAME_GLOBAL + 1].startswith("Too many failed logins")
    checked = sum(message == "Wrong password." for message in outcomes)
    assert checked == FREE_PER_NAME_GLOBAL + 1  # the rest were refused without checking a password
    assert login("alice", "alice-pw", ip="2001:db8:a11c::99").ok  # her /64, though the name is under attack
    assert not login("alice", "alice-pw", ip="2001:db8:ffff::1").ok  # a new address waits for the delay
    limited = [e for e in trail.entries() if e.action == "login_rate_limited"]
    assert limited and "from any address" in limited[0].why


def test_one_64_is_one_address(real_redis, fake_clock):
    """Rotating the low 64 bits of an IPv6 address gains a guesser nothing: the (address, name) pair is per /64."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    login = _login(real_redis, fake_clock, trail, OPERATORS)
    for i in range(FREE_PER_NAME + 1):
        assert login("carol", "wrong", ip=f"2001:db8:1:2::{i + 1:x}").message == "Wrong password."
    assert login("carol", "carol-pw", ip="2001:db8:1:2::ffff").message.startswith("Too many failed logins")
    assert login("carol", "carol-pw", ip="2001:db8:9:9::1").ok


def test_finding_6_a_name_that_is_the_shared_password_is_refused_and_never_recorded(real_redis, fake_clock):
    """Issue 19 finding 6: typing the shared password as the name (and as the password) used to log in as
    "<password> (self-declared)" and put it on History; now it is refused and the audit shows no trace of it."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    login = _login(real_redis, fake_clock, trail, OPERATORS)
    for name in ("right", " RIGHT ", "ｒｉｇｈｔ"):
        outcome = login(name, "right")
        assert not outcome.ok and "not a password" in outcome.message
    assert all("right" not in f"{e.who} {e.why} {e.detail}".lower() for e in trail.entries())
    assert [e.who for e in trail.entries()] == [UNVERIFIED_NAME] * 3


def test_allow_list_entries_carry_roles_and_the_exact_email_wins():
    """BREAKER_OPERATORS entries take an optional =role (default operator); an exact email's entry beats its
    domain's; an unknown role stops start-up naming the variable."""
    from breaker import ConfigError, Settings
    from breaker.ops.access import allow_list_role

    settings = Settings.from_env({"BREAKER_OPERATORS": "Alice@Example.com = admin, @example.com=viewer, ops@x.org"})
    assert settings.operators == ("alice@example.com=admin", "@example.com=viewer", "ops@x.org")
    roles = {email: allow_list_role(email, settings.operators) for email in
             ("alice@example.com", "bob@example.com", "ops@x.org", "eve@y.org")}
    assert {k: v.value if v else None for k, v in roles.items()} == {
        "alice@example.com": "admin", "bob@example.com": "viewer", "ops@x.org": "operator", "eve@y.org": None}
    principal, _ = oidc_operator({"is_logged_in": True, "email": "Alice@Example.com"}, settings.operators)
    assert (principal.name, principal.role.value, principal.auth, principal.verified) == (
        "alice@example.com", "admin", "oidc", True)
    with pytest.raises(ConfigError, match="BREAKER_OPERATORS"):
        Settings.from_env({"BREAKER_OPERATORS": "alice@example.com=root"})


def test_operator_roles_come_from_the_table_in_either_form_and_a_bad_role_cannot_log_in():
    """[operators] name = {hash, role}, or the v2 string with [operator_roles]; default operator; canonical names;
    an unknown role refuses that operator instead of granting a default."""
    credentials = Credentials.from_secrets({
        "operators": {"Root": {"hash": "h1", "role": "admin"}, "bob": "h2", "carol": "h3", "dave": {"hash": "h4",
                                                                                                   "role": "god"}},
        "operator_roles": {"CAROL": "approver"},
    })
    assert [(o.name, o.role.value) for o in map(credentials.operator, ("ｒｏｏｔ", " BOB", "carol"))] == [
        ("Root", "admin"), ("bob", "operator"), ("carol", "approver")]
    assert credentials.operator("dave") is None


@pytest.mark.parametrize("alias", ["ali\u200bce", "\u200dalice", "alice\ufeff", "al\u00adice", "ali\u2060ce"])
def test_invisible_characters_do_not_make_another_name(real_redis, fake_clock, alias):
    """Review (identity): NFKC keeps zero-width and other format characters (Unicode Cf), so "ali\\u200bce" was a
    name of its own: the shared password logged it in as a self-declared alias that shows as "alice", and the
    rule counted it as another person than alice. Canonical names drop them (an [operators] entry, an OIDC email
    or a principal made by hand is alice), and a typed name holding one is refused outright."""
    from breaker.ops.roles import Principal, canonical_name

    assert canonical_name(alias) == "alice" and Principal.of(alias).canonical == Principal.of("Alice").canonical
    assert Credentials({alias: hash_password("alice-pw")}).operator("alice") is not None
    login = _login(real_redis, fake_clock, AuditTrail(real_redis, clock=fake_clock), OPERATORS)
    assert [login(alias, pw).ok for pw in ("right", "alice-pw")] == [False, False]


@pytest.mark.parametrize("name", ["\u202eecila", "bob\u202e", "bo\nb", "bob\x1b[2J"])
def test_a_self_declared_name_with_control_characters_is_refused(real_redis, fake_clock, name):
    """Review (identity): a bidi override (U+202E) or a control character in a typed name makes History show a
    different name ("alice" from "\\u202eecila"); such a name is refused before any check, and not recorded."""
    trail = AuditTrail(real_redis, clock=fake_clock)
    outcome = _login(real_redis, fake_clock, trail)(name, "right")
    assert not outcome.ok and "letters" in outcome.message
    assert trail.entries() == []


def test_the_login_wait_is_kept_in_server_time_not_the_replicas(real_redis, redis_url):
    """Review (identity): the throttle stamped failures with the console process's own clock, so replicas whose
    clocks disagree disagreed on every wait (one ahead let a guesser through early, one behind stretched the
    wait). Waits are kept in the Redis server's time, as tokens' expiry and every "now" (SPEC section 6): here the
    client's TIME is shifted an hour, as if the process's clock were an hour behind the server's, and only the
    server's hour counts."""
    class AnHourLater(type(real_redis)):
        def time(self):
            seconds, micros = super().time()
            return int(seconds) + 3600, micros

    later = AnHourLater.from_url(redis_url)
    for _ in range(FREE_PER_NAME + 1):  # the last one arms a 1 s wait, in the server's time
        assert LoginThrottle(real_redis).begin("203.0.113.9", "alice") is None
    assert LoginThrottle(real_redis).begin("203.0.113.9", "alice") is not None
    assert LoginThrottle(later).begin("203.0.113.9", "alice") is None  # the server says an hour has passed
    later.close()
