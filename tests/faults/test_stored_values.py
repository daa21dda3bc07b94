"""Whatever sits at the key, a panic never answers NORMAL, and the key is left usable (SPEC section 3)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from breaker import PanicClock, VIXCircuitBreaker, parse_start, redis_client
from breaker.ops.zombie import zombie_verdict

from .conftest import START_KEY

NOW = 1_800_000_000.0
YEAR_S = 365 * 86400
KEY_TTL_S = 900
REPLACED, KEPT = "replaced by now", "kept"
PATIENT_MS = 1000  # no fault here: a loaded machine must not turn a slow reply into an outage

# (id, how to store it, answer for a low-stakes panic with base TTL 60, what happens to the value)
CASES = [
    ("empty", b"", (0, "PANIC_FULL"), REPLACED),
    ("garbage", b"abc", (0, "PANIC_FULL"), REPLACED),
    ("nan", b"nan", (0, "PANIC_FULL"), REPLACED),
    ("inf", b"inf", (0, "PANIC_FULL"), REPLACED),
    ("minus-one", b"-1", (0, "PANIC_FULL"), REPLACED),
    ("zero", b"0", (0, "PANIC_FULL"), REPLACED),
    ("1e308", b"1e308", (0, "PANIC_FULL"), REPLACED),  # far ahead: a broken clock wrote it (SPEC v2)
    ("one-year-ahead", repr(NOW + YEAR_S).encode(), (0, "PANIC_FULL"), REPLACED),
    ("a-minute-ahead", repr(NOW + 59).encode(), (0, "PANIC_FULL"), KEPT),
    ("ten-years-ago", repr(NOW - 10 * YEAR_S).encode(), (0, "PANIC_FULL"), REPLACED),  # older than 48 h (v3)
    ("monotonic-reading", b"12345.6", (0, "PANIC_FULL"), REPLACED),
    ("forty-hours-ago", repr(NOW - 40 * 3600).encode(), (45, "NEW_NORMAL"), KEPT),
    ("twenty-minutes-ago", repr(NOW - 1200).encode(), (5, "PANIC_PARTIAL"), KEPT),
    ("underscores", b"1_799_998_800", (0, "PANIC_FULL"), REPLACED),
    ("fullwidth-digits", "１８００００００００".encode(), (0, "PANIC_FULL"), REPLACED),
    ("emoji", "panic 🚨".encode(), (0, "PANIC_FULL"), REPLACED),
    ("latin-1-bytes", b"\xff\xfe1800000000", (0, "PANIC_FULL"), REPLACED),
    ("hash", {"start": "1800000000"}, (0, "PANIC_FULL"), REPLACED),
    ("list", ["1800000000"], (0, "PANIC_FULL"), REPLACED),
]


def _store(admin, value) -> None:
    if isinstance(value, dict):
        admin.hset(START_KEY, mapping=value)
    elif isinstance(value, list):
        admin.rpush(START_KEY, *value)
    else:
        admin.set(START_KEY, value)  # no expiry: the observation must add one


@pytest.mark.parametrize(("stored", "answer", "fate"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_stored_value_answer_and_key_afterwards(fault_server, fake_clock, stored, answer, fate):
    """Each odd stored value gets SPEC section 3's answer; the key ends a parseable string with an expiry."""
    fake_clock.now = NOW
    admin = fault_server.admin
    _store(admin, stored)
    client = redis_client(fault_server.url, timeout_ms=PATIENT_MS)
    breaker = VIXCircuitBreaker(client, clock=fake_clock, refresh_interval_s=0, server_time=False)

    with capture_logs() as logs:
        first = breaker.get_ttl(60, "panic")
        second = breaker.get_ttl(60, "panic")

    assert first == answer and second == answer
    assert first[1] != "NORMAL"
    assert admin.type(START_KEY) == b"string"
    after = admin.get(START_KEY)
    assert 0 < admin.ttl(START_KEY) <= KEY_TTL_S
    invalid = [e for e in logs if e["event"] == "INVALID_PANIC_TIMESTAMP"]
    if fate == REPLACED:
        assert parse_start(after) == NOW
        assert len(invalid) == 1 and invalid[0]["log_level"] == "error"
    else:
        assert after == stored
        assert not invalid
    assert not [e for e in logs if e["event"] in ("REDIS_UNAVAILABLE", "VIX_CIRCUIT_BREAKER_ERROR")]


def test_decode_responses_client_reads_str_values(fault_server, fake_clock):
    """A client built with decode_responses=True (values come back as str) gets the same tiers."""
    fake_clock.now = NOW
    fault_server.write_raw(repr(NOW - 1200))
    client = redis_client(fault_server.url, timeout_ms=PATIENT_MS)
    client.connection_pool.connection_kwargs["decode_responses"] = True
    breaker = VIXCircuitBreaker(client, clock=fake_clock, refresh_interval_s=0, server_time=False)
    assert breaker.get_ttl(60, "panic") == (5, "PANIC_PARTIAL")
    fault_server.write_raw("１８００００００００")
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert parse_start(fault_server.admin.get(START_KEY)) == NOW


def test_key_without_expiry_is_a_zombie_until_observed(fault_server, fake_clock):
    """A start set by hand without expiry is flagged by the console's verdict; one observation restores the expiry."""
    fake_clock.now = NOW
    fault_server.write_raw(repr(NOW - 1200))
    clock = PanicClock(fault_server.admin)
    before = zombie_verdict(clock.read(NOW))
    assert before.suspect and any(reason.startswith("no expiry") for reason in before.reasons)

    breaker = VIXCircuitBreaker(
        redis_client(fault_server.url, timeout_ms=PATIENT_MS), clock=fake_clock, server_time=False,
    )
    assert breaker.get_ttl(60, "panic") == (5, "PANIC_PARTIAL")
    after = zombie_verdict(clock.read(NOW))
    assert after == (False, ())


def test_far_future_start_is_replaced_and_no_zombie_is_left(fault_server, fake_clock):
    """A start a year ahead would pin the fleet at TTL 0: the next observation replaces it, nothing to flag."""
    fake_clock.now = NOW
    fault_server.write_raw(repr(NOW + YEAR_S))
    assert zombie_verdict(PanicClock(fault_server.admin).read(NOW)).suspect
    breaker = VIXCircuitBreaker(
        redis_client(fault_server.url, timeout_ms=PATIENT_MS), clock=fake_clock, server_time=False,
    )
    assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert zombie_verdict(PanicClock(fault_server.admin).read(NOW)) == (False, ())
