"""The console's data layer: one target per process, the timed clock read, Redis errors as messages, formats.

The bottom of the console's helpers (see docs/console.md, "Layers"): it imports no other console module but
``console.text``, so every widget and the page scaffold (``console.page``) can build on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import streamlit as st

from breaker import ClockReading, ConfigError, Settings, configure_logging, redis_client
from breaker.ops import AuditTrail, WriteAccess, WriteRefused
from breaker.ops.read_deadline import operator_deadline
from breaker.ops.target import Target, connect_target
from breaker.ops.timefmt import format_duration, format_ts
from console.text import code_span, md_text

HEALTH_KEY = "redis_health"
DRILL_TIMEOUT_MS = 1000
T = TypeVar("T")


@st.cache_resource(show_spinner="Connecting to Redis…")
def _target() -> Target:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return connect_target(settings)


def get_target() -> Target:
    """The shared target, or a stopped page naming the bad setting."""
    try:
        return _target()
    except ConfigError as exc:
        st.error(f"Configuration error: {exc}")
        st.stop()


@st.cache_resource
def _drill_client(url: str) -> Any:
    return redis_client(url, timeout_ms=DRILL_TIMEOUT_MS)


def drill_client() -> Any:
    """Drills and replays make hundreds of round trips in a burst: a 1 s timeout, not a worker's 50 ms,
    so a busy moment does not abort them (the live view keeps the short one)."""
    return _drill_client(get_target().url)


def audit_trail() -> AuditTrail:
    target = get_target()
    return AuditTrail(target.client, key_prefix=target.settings.key_prefix)


@dataclass(frozen=True)
class Health:
    """Redis as the last clock read saw it: the read itself is the health probe (no extra PING). ``checked_at``
    is the server's time of the read, or this machine's when Redis did not answer."""

    ok: bool
    latency_ms: float
    error: str | None = None
    checked_at: float | None = None


def read_clock() -> ClockReading | None:
    """One timed MULTI/EXEC read of the panic clock at the server's time; None (and an unhealthy Health) when
    Redis fails."""
    target = get_target()
    checked_at = time.time()
    began = time.perf_counter()
    try:
        with operator_deadline(target.settings.operator_read_timeout_s):  # the whole reply, not each recv
            reading = target.panic_clock().read_now()  # judged at the server's time, as workers measure
    except Exception as exc:
        st.session_state[HEALTH_KEY] = Health(False, _ms_since(began), f"{type(exc).__name__}: {exc}", checked_at)
        return None
    st.session_state[HEALTH_KEY] = Health(True, _ms_since(began), checked_at=reading.now)  # the server's time
    return reading


def last_health() -> Health | None:
    return st.session_state.get(HEALTH_KEY)


def _ms_since(began: float) -> float:
    return (time.perf_counter() - began) * 1000.0


def show_redis_error(what: str, detail: str | None = None) -> None:
    health = last_health()
    detail = detail or (health.error if health is not None and health.error else "no answer")
    st.error(f"Redis unreachable while {what}: {md_text(detail)}. Workers answer every panic with TTL 0 (PANIC_FULL) "
             "until it is back; this page keeps retrying.", icon=":material/cloud_off:")


def refusal_text(exc: Exception) -> str:
    """"Refused: <why>. Nothing was written." with one period, whether or not the reason ends with its own."""
    return f"Refused: {md_text(str(exc).rstrip().rstrip('.'))}. Nothing was written."


def guarded(what: str, action: Callable[[], T]) -> T | None:
    """Run a breaker call for the page: refusals, bad input and Redis errors become messages, not tracebacks."""
    try:
        return action()
    except WriteRefused as exc:
        st.error(refusal_text(exc), icon=":material/lock:")
    except ValueError as exc:
        st.error(f"Not done: {md_text(exc)}")
    except Exception as exc:  # redis errors, OSError: the console must keep standing
        st.error(f"Redis error while {what}: {type(exc).__name__}: {md_text(exc)}", icon=":material/cloud_off:")
    return None


def show_audit_error(run: Any) -> None:
    """A drill ran but its audit entry was not written (``AuditedRun.audit_error``): say so beside the result."""
    if run.audit_error:
        st.error(f"Redis error while auditing the drill: {md_text(run.audit_error)}. The result below was not audited.",
                 icon=":material/cloud_off:")


def access_notice(access: WriteAccess, *, scratch_only: bool = False) -> None:
    """Say on the page whether its buttons write, and where: a logged-in operator on a real target is told
    that workers act on what the page writes (``scratch_only`` for a page that writes only scratch keys)."""
    target = get_target()
    if target.embedded:
        st.info("Sandbox: the console runs on its own embedded server; writes are open and reach no worker.",
                icon=":material/science:")
    elif not access.allowed:
        why = access.refusal("panic_start") if access.role is not None else \
            "log in as an operator (sidebar) to use the write controls"
        st.warning(f"Read-only: {md_text(why)}.", icon=":material/lock:")
    elif scratch_only:
        st.info(f"Writes go to scratch keys on {md_text(target.display)}, deleted afterwards: no worker reads them.",
                icon=":material/science:")
    else:
        st.warning(f"Writes go to {md_text(target.display)} (key prefix {code_span(target.settings.key_prefix)}): "
                   "workers act on them.",
                   icon=":material/warning:")


BASE_TTL_KEY = "base_ttl_s"
STALE_MIN_KEY = "zombie_stale_min"


def base_ttl_input(where: Any, key: str) -> int:
    """The operator's base TTL: one value per session, so Live and Tiers show the same cap."""
    return int(_session_number(where, key, BASE_TTL_KEY, 60, "Base TTL (s)", min_value=0, max_value=86400, step=5))


def stale_min_input(where: Any, key: str, label: str) -> int:
    """The zombie threshold in minutes: one value per session, so Live and Drills reach the same verdict."""
    return int(_session_number(where, key, STALE_MIN_KEY, 15, label, min_value=1, max_value=1440))


def _session_number(where: Any, key: str, session_key: str, default: int, label: str, **limits: Any) -> Any:
    """A page's number widget backed by a plain session key, which (unlike a widget key) survives changing page."""
    st.session_state[key] = st.session_state.get(session_key, default)

    def keep() -> None:
        st.session_state[session_key] = st.session_state[key]

    return where.number_input(label, key=key, on_change=keep, **limits)


def fmt_ts(ts: float | None, *, time_only: bool = False) -> str:
    return format_ts(ts, time_only=time_only)


def fmt_duration(seconds: float | None) -> str:
    """The console's and the CLI's one duration format (``breaker.ops.timefmt``): "20 min 42 s"."""
    return format_duration(seconds)


def observed_caption(reading: ClockReading) -> str:
    """What a clock that is no zombie suspect has shown: when it was last observed, not who fed it (a drill
    records the console's own observation, indistinguishable from a worker's)."""
    since = reading.since_last_observation_s
    if since is None:
        seen = "never observed"
    else:
        seen = f"last observed {since:.0f} s ago" if since < 60 else f"last observed {fmt_duration(since)} ago"
    return f"{seen}, expires by itself."


