"""Bad input to get_ttl: a table of what the caller gets, and fuzzing that it never raises or fails open."""

from __future__ import annotations

import enum
import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from breaker import PanicMode, VIXCircuitBreaker, redis_client

from .conftest import RoundTrips

NOW = 1_800_000_000.0
PANIC_AGE_S = 50 * 60  # low stakes tier 3 (20 s), medium tier 2 (5 s), high tier 1 (0 s)
FAIL_SAFE = (0, "PANIC_FULL")
LOW, MEDIUM, HIGH = (20, "DEGRADED"), (5, "PANIC_PARTIAL"), (0, "PANIC_FULL")
MB = "x" * 1_000_000
PATIENT_MS = 1000  # no fault here: a loaded machine must not turn a slow reply into an outage
FAILURE_MODEL = Path(__file__).resolve().parents[2] / "docs" / "failure-model.md"


class ExplodingContext(dict):
    """A dict whose ``get`` raises, like a lazy mapping whose backend went away."""

    def get(self, *args, **kwargs):
        raise RuntimeError("context backend unavailable")


class VixStatus(enum.StrEnum):
    """How a caller's own code may name the statuses."""

    PANIC = "PANIC"
    NORMAL = "normal"


class OddStr(str):
    """A str subclass whose methods misbehave: only its text may count."""

    def strip(self, *args):
        raise RuntimeError("strip is not for you")


# (label as in docs/failure-model.md, base_ttl, vix_status, match_context, answer, error event or None)
CASES = [
    ("vix_status=None", 60, None, None, FAIL_SAFE, "UNKNOWN_VIX_STATUS"),
    ('vix_status=""', 60, "", None, FAIL_SAFE, "UNKNOWN_VIX_STATUS"),
    ('vix_status="PANIC"', 60, "PANIC", None, LOW, None),
    ('vix_status=" panic "', 60, " panic ", None, LOW, None),
    ('vix_status="panic\\n"', 60, "panic\n", None, LOW, None),
    ("vix_status=42", 60, 42, None, FAIL_SAFE, "UNKNOWN_VIX_STATUS"),
    ('vix_status=b"panic"', 60, b"panic", None, FAIL_SAFE, "UNKNOWN_VIX_STATUS"),
    ('vix_status="unknown"', 60, "unknown", None, FAIL_SAFE, "UNKNOWN_VIX_STATUS"),
    ("vix_status=1 MB string", 60, MB, None, FAIL_SAFE, "UNKNOWN_VIX_STATUS"),
    ('vix_status="Normal"', 60, "Normal", None, (60, "NORMAL"), None),
    ("vix_status=StrEnum member PANIC", 60, VixStatus.PANIC, None, LOW, None),
    ('vix_status=str subclass "normal" whose strip raises', 60, OddStr("normal"), None, (60, "NORMAL"), None),
    ('vix_status=" WARNING\\t"', 60, " WARNING\t", None, (60, "NORMAL"), None),
    ("base_ttl=-1", -1, "panic", None, FAIL_SAFE, "INVALID_BASE_TTL"),
    ("base_ttl=0", 0, "panic", None, (0, "DEGRADED"), None),
    ("base_ttl=NaN", math.nan, "panic", None, FAIL_SAFE, "INVALID_BASE_TTL"),
    ("base_ttl=inf", math.inf, "panic", None, FAIL_SAFE, "INVALID_BASE_TTL"),
    ('base_ttl="60"', "60", "panic", None, FAIL_SAFE, "INVALID_BASE_TTL"),
    ("base_ttl=True", True, "panic", None, FAIL_SAFE, "INVALID_BASE_TTL"),
    ("base_ttl=10**12", 10**12, "panic", None, LOW, None),
    ("base_ttl=None", None, "panic", None, FAIL_SAFE, "INVALID_BASE_TTL"),
    ("base_ttl=2.5", 2.5, "panic", None, (2, "DEGRADED"), None),
    ('base_ttl=Decimal("60")', Decimal("60"), "panic", None, FAIL_SAFE, "INVALID_BASE_TTL"),
    ("base_ttl=-1, calm", -1, "normal", None, FAIL_SAFE, "INVALID_BASE_TTL"),
    ("base_ttl=2.5, calm", 2.5, "normal", None, (2, "NORMAL"), None),
    ("base_ttl=10**12, calm", 10**12, "normal", None, (10**12, "NORMAL"), None),
    ("match_context=None", 60, "panic", None, LOW, None),
    ("match_context=[]", 60, "panic", [], LOW, None),
    ('match_context="Champions League"', 60, "panic", "Champions League", LOW, None),
    ('match_context={"league": None}', 60, "panic", {"league": None}, LOW, None),
    ('match_context={"league": 5}', 60, "panic", {"league": 5}, LOW, None),
    ("match_context=nested dict", 60, "panic", {"league": {"name": "Champions League"}}, LOW, None),
    ("match_context=1 MB string", 60, "panic", MB, LOW, None),
    ('match_context={"league": 1 MB string}', 60, "panic", {"league": MB}, LOW, None),
    ('match_context={"league": "Champions League " + 1 MB}', 60, "panic", {"league": "Champions League " + MB}, HIGH,
     None),
    ("match_context=dict whose get raises", 60, "panic", ExplodingContext(league="Champions League"), LOW, None),
    ('match_context={"league": "Premier League"}', 60, "panic", {"league": "Premier League"}, MEDIUM, None),
    ('match_context={"stakes": "HIGH"}', 60, "panic", {"stakes": "HIGH"}, HIGH, None),
    ('match_context={"stakes": "bogus", "league": "Ligue 1"}', 60, "panic", {"stakes": "bogus", "league": "Ligue 1"},
     MEDIUM, None),
    ('match_context={"league": "Eurosport Cup"}', 60, "panic", {"league": "Eurosport Cup"}, LOW, None),
    ('match_context={"competition": "Ligue 10"}', 60, "panic", {"competition": "Ligue 10"}, LOW, None),
    ('match_context={"stage": "El Clásico"}', 60, "panic", {"stage": "El Clásico"}, HIGH, None),
]


@pytest.fixture
def panicking(module_server):
    """A panic that started 50 minutes ago, and a worker client on the module's server with its round trips."""
    module_server.admin.flushall()
    module_server.write_raw(repr(NOW - PANIC_AGE_S), ex=900)
    client = redis_client(module_server.url, timeout_ms=PATIENT_MS)
    return client, RoundTrips(client)


@pytest.mark.parametrize(
    ("base_ttl", "vix_status", "match_context", "answer", "error_event"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_answer(panicking, base_ttl, vix_status, match_context, answer, error_event):
    """Each row of the table: the documented answer, the documented error event, and no clock observed on error."""
    client, round_trips = panicking
    breaker = VIXCircuitBreaker(client, clock=lambda: NOW, refresh_interval_s=0, server_time=False)
    with capture_logs() as logs:
        got = breaker.get_ttl(base_ttl, vix_status, match_context)
    assert got == answer
    assert type(got[0]) is int and isinstance(got[1], PanicMode)
    errors = [e for e in logs if e["log_level"] == "error"]
    if error_event is None:
        assert errors == []
    else:
        assert [e["event"] for e in errors] == [error_event]
        assert all(len(str(value)) <= 200 for value in errors[0].values()), "a 1 MB input is not logged whole"
        # SPEC 4 v3: bad input still makes the interval's round trip (its heartbeat), but never observes the clock
        assert round_trips.count <= 2, "one script call at most (EVALSHA, then EVAL on a cold script cache)"
        assert client.get("brain:panic_last_seen_ts") is None, "an invalid call observes no clock"
        assert client.get("brain:panic_start_ts") == repr(NOW - PANIC_AGE_S).encode()


def test_table_has_30_rows_and_each_is_in_the_failure_model():
    """docs/failure-model.md lists every row of this table, and there are at least 30."""
    assert len(CASES) >= 30
    text = FAILURE_MODEL.read_text(encoding="utf-8")
    missing = [label for label, *_ in CASES if f"`{label}`" not in text]
    assert missing == []


_CALM = {"normal", "warning"}
_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.text(),
    st.binary(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text()), max_size=4),
)
_statuses = st.one_of(
    _anything,
    st.sampled_from(["panic", "normal", "warning"]).flatmap(
        lambda word: st.tuples(st.sampled_from(["", " ", "\t", "\n "]), st.sampled_from([str.upper, str.title, str]))
        .map(lambda pad_case: pad_case[0] + pad_case[1](word) + pad_case[0])
    ),
)
_leagues = st.sampled_from(["Champions League", "Ligue 1", "Ligue 2", "Eurosport", "El Clásico", "", "final"])
_contexts = st.one_of(
    _anything,
    st.fixed_dictionaries({}, optional={"league": st.one_of(_leagues, _anything), "stakes": st.one_of(
        st.sampled_from(["high", "MEDIUM", "low_stakes", "HIGH_STAKES", "nope"]), _anything), "competition": _leagues}),
    st.recursive(st.text(max_size=5), lambda inner: st.dictionaries(st.text(max_size=5), inner, max_size=3)),
)


def _is_calm(status) -> bool:
    return isinstance(status, str) and status.strip().lower() in _CALM


def _is_valid_base(base) -> bool:
    return type(base) in (int, float) and math.isfinite(base) and base >= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base_ttl=st.one_of(_anything, st.integers(0, 10**6), st.floats(0, 1e6)),
    vix_status=_statuses,
    match_context=_contexts,
    age_s=st.floats(min_value=-365 * 86400.0, max_value=15 * 60.0, exclude_max=True),
)
def test_fuzz_get_ttl_never_raises_nor_caches_a_young_panic(module_server, base_ttl, vix_status, match_context, age_s):
    """Any input: no exception, an (int, PanicMode) answer, and TTL 0 unless the status is calm (panic < 15 min)."""
    start = NOW - age_s
    assume(NOW - start < 15 * 60)  # at 1.8e9 s a float step is 2.4e-7 s: 899.99999999 s ago can round to 900
    module_server.write_raw(repr(start), ex=900)
    client = redis_client(module_server.url, timeout_ms=PATIENT_MS)
    breaker = VIXCircuitBreaker(client, clock=lambda: NOW, refresh_interval_s=0, server_time=False)
    ttl, mode = breaker.get_ttl(base_ttl, vix_status, match_context)
    assert type(ttl) is int and isinstance(mode, PanicMode) and ttl >= 0
    if _is_calm(vix_status) and _is_valid_base(base_ttl):
        assert (ttl, mode) == (int(base_ttl), PanicMode.NORMAL)
    else:
        assert ttl == 0, "a panic younger than tier 1's threshold (or an unreadable call) never caches"
        assert mode is not PanicMode.NORMAL


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base_ttl=st.one_of(st.integers(0, 10**6), st.floats(0, 1e6)),
    vix_status=st.sampled_from(["panic", " PANIC", "Panic\n"]),
    match_context=_contexts,
    age_s=st.floats(min_value=-10 * 365 * 86400.0, max_value=10 * 365 * 86400.0),
)
def test_fuzz_panic_of_any_age_is_never_normal(module_server, base_ttl, vix_status, match_context, age_s):
    """A panic of any age (future starts included) answers a panic mode with a TTL no longer than base."""
    module_server.write_raw(repr(NOW - age_s), ex=900)
    client = redis_client(module_server.url, timeout_ms=PATIENT_MS)
    breaker = VIXCircuitBreaker(client, clock=lambda: NOW, refresh_interval_s=0, server_time=False)
    ttl, mode = breaker.get_ttl(base_ttl, vix_status, match_context)
    assert mode is not PanicMode.NORMAL
    assert 0 <= ttl <= int(base_ttl)
    if NOW - (NOW - age_s) < 15 * 60:
        assert ttl == 0
