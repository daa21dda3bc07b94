"""``VIXCircuitBreaker``: the shared panic clock composed with the tier policy.

The one promise: a panic whose start cannot be read reliably answers TTL 0
(``PANIC_FULL``). Every other choice here serves three more: a worker makes at most
one Redis round trip per ``refresh_interval_s`` whatever it answers (that trip
carries its heartbeat, reads the operator override and, in a panic, observes the
clock, all in the server's time); a worker never waits on a sick Redis for longer
than one timeout per ``retry_after_s``; and a steady state writes no log lines
beyond DEBUG.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from . import refresh, schedule
from ._version import __version__
from .client import describe_client, is_cluster_client, stall_risks
from .client import redis_client as build_client
from .clock import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_MAX_PANIC_AGE_H,
    SEED_KEY_TTL_S,
    NoAtomicCommands,
    PanicClock,
    UnusableStart,
    check_key_ttl,
    check_max_panic_age_s,
    default_key_ttl_s,
    format_ts,
    observation_of,
)
from .config import ConfigError, Settings
from .decisions import DecisionLog, StateListener
from .heartbeat import AnswerCounts, answer_state, beat_json, beat_ttl_s, new_worker_id
from .importance import MatchImportance, importance_of
from .keyspace import cluster_prefix_problem, default_key_prefix
from .logs import breaker_logger
from .outage import Outage
from .override import DEFAULT_MAX_OVERRIDE_MIN, OVERRIDE_KEY_NAME, HonouredOverride, OverrideMode
from .policy import MODE_OF_TIER, AdaptivePanicQuota, PanicMode, TierTable, check_base_ttl
from .volatility import VALID_STATUSES, CircuitBreakerMode, VolatilityWindow

PANIC_START_TS_KEY = f"{DEFAULT_KEY_PREFIX}panic_start_ts"
PANIC_TS_TTL_SECONDS = SEED_KEY_TTL_S

_PANIC, _CALM = True, False
_STATUS_KIND = {"panic": _PANIC, "normal": _CALM, "warning": _CALM}
_NORMAL, _FULL = PanicMode.NORMAL, PanicMode.PANIC_FULL  # a member looked up on its class costs ~0.1 µs in 3.11
_FAIL_SAFE = (0, _FULL)

__all__ = ["PANIC_START_TS_KEY", "PANIC_TS_TTL_SECONDS", "StateListener", "VIXCircuitBreaker"]


def _status_text(vix_status: Any) -> str | None:
    """The status as lower-case text; a StrEnum member or numpy.str_ is read by its text, not its overrides."""
    return str.lower(str.strip(vix_status)) if isinstance(vix_status, str) else None


def _status_kind(vix_status: Any) -> bool | None:
    if type(vix_status) is str:
        kind = _STATUS_KIND.get(vix_status)
        if kind is not None:
            return kind
    return _STATUS_KIND.get(_status_text(vix_status))  # type: ignore[arg-type]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Sync(NamedTuple):
    """What the last successful round trip taught this worker."""

    at: float  # local time of that round trip (-inf: none yet, or it failed since)
    offset: float  # add to local time to measure durations (server time - local time; 0 without server_time)
    server_offset: float  # server time - local time, always (overrides end in server time)
    start: float | None  # the agreed start, when that round trip observed the clock


_NEVER = _Sync(-math.inf, 0.0, 0.0, None)


class _Answer(NamedTuple):
    """The panic answer of one stakes class, the same at every local time in [since, until]."""

    since: float
    until: float
    table: TierTable  # the quota's table it was decided on (a thresholds write replaces the table)
    ttl: int  # before the cap at base_ttl
    mode: PanicMode
    tier: int
    mode_text: str  # plain str keys for the answer tally: they hash without Enum machinery
    stakes_text: str
    state: tuple[PanicMode, int]  # what the decision log compares


class _Steady(NamedTuple):
    """Between two round trips: the local times [since, until] in which a call has nothing to do but answer.

    Nothing is due (no round trip, no seed-mode delete), no override is in force, and (``panic``) the start
    is known, so a panic answer depends only on the stakes class: ``answers`` caches it per class, up to the
    next tier boundary. Replaced (never edited in place) after every round trip, failure or delete."""

    since: float
    until: float
    calm: bool  # calm calls may answer from it (not seed mode)
    panic: bool  # panic calls may answer from it (a start is known)
    sync: _Sync
    quota: AdaptivePanicQuota
    answers: dict[MatchImportance, _Answer]


_NO_STEADY = _Steady(math.inf, -math.inf, False, False, _NEVER, None, {})  # type: ignore[arg-type]
_BOUNDARY_STEPS = 64  # at most this many ulps below a computed tier boundary before giving up on caching


def _last_time_before(limit: float, fits: Callable[[float], bool]) -> float | None:
    """The latest local time at or below ``limit`` (within a few ulps) for which ``fits`` holds, or None."""
    t = limit
    for _ in range(_BOUNDARY_STEPS):
        if fits(t):
            return t
        t = math.nextafter(t, -math.inf)
    return None


SCRIPTING_RETRY_S = 30.0  # the non-atomic fallback tries the script again after this, doubling to the cap
SCRIPTING_RETRY_CAP_S = 600.0
_FALLBACK_TEXT = ("separate SET NX EX, GET, EXPIRE (first writer still wins; an unusable value is not replaced, "
                  "it expires)")
BEAT_MIN_SPACING_S = 0.25  # with a shorter refresh_interval_s, round trips carry a beat at most this often


def _wall_clock() -> float:
    """``time.time`` looked up at each call, so that a host's ``mock.patch("time.time")`` or freezegun moves it."""
    return time.time()


_LIVE: weakref.WeakSet[VIXCircuitBreaker] = weakref.WeakSet()  # every breaker a forked child must renew


def _after_fork_in_child() -> None:
    """``os.register_at_fork(after_in_child=...)``: each live breaker becomes a new worker in the child."""
    for breaker in list(_LIVE):
        with contextlib.suppress(Exception):  # a hook must never break the host's fork
            breaker._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class VIXCircuitBreaker:
    """Answers ``(ttl, mode)`` for a cache write, failing safe to TTL 0 during a panic."""

    def __init__(
        self,
        redis_client: Any = None,
        *,
        key_prefix: str | None = None,  # None: "brain:", or "{brain}:" on a cluster client (one hash slot)
        panic_key_ttl_s: int | None = None,
        end_on_normal: bool = False,
        refresh_interval_s: float = 1.0,
        retry_after_s: float = 1.0,
        server_time: bool = True,
        quota: AdaptivePanicQuota | None = None,
        clock: Callable[[], float] | None = None,
        window_seconds: int = 1800,
        panic_threshold_enter: float = 0.50,
        panic_threshold_exit: float = 0.30,
        circuit_open_threshold: float = 0.80,
        circuit_close_threshold: float = 0.60,
        on_state_change: StateListener | None = None,
        metrics: Any = None,
        max_panic_age_h: float = DEFAULT_MAX_PANIC_AGE_H,
        max_override_min: float = DEFAULT_MAX_OVERRIDE_MIN,
        scripting_retry_s: float = SCRIPTING_RETRY_S,
    ) -> None:
        for name, value in (("refresh_interval_s", refresh_interval_s), ("retry_after_s", retry_after_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        if panic_key_ttl_s is None:
            panic_key_ttl_s = default_key_ttl_s(end_on_normal)
        check_key_ttl(panic_key_ttl_s)
        self.max_panic_age_s = check_max_panic_age_s(max_panic_age_h) * 3600
        for name, value in (("max_override_min", max_override_min), ("scripting_retry_s", scripting_retry_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        self.max_override_s = float(max_override_min) * 60
        self.scripting_retry_s = float(scripting_retry_s)
        cluster = is_cluster_client(redis_client)
        if key_prefix is None:
            key_prefix = default_key_prefix(cluster)
        elif cluster and cluster_prefix_problem(key_prefix):
            raise ValueError(f"key_prefix {cluster_prefix_problem(key_prefix)}")
        self.redis = redis_client
        self.panic_clock = (
            PanicClock(redis_client, key_prefix=key_prefix, panic_key_ttl_s=panic_key_ttl_s, keep_connection=True,
                       max_panic_age_s=self.max_panic_age_s)
            if redis_client is not None
            else None
        )
        self.key_prefix = key_prefix
        self.panic_key_ttl_s = panic_key_ttl_s
        self.end_on_normal = bool(end_on_normal)
        self.refresh_interval_s = float(refresh_interval_s)
        self.retry_after_s = float(retry_after_s)
        self.server_time = bool(server_time)
        # How long other threads may keep using a start while one thread's round trip is still in flight.
        self._stale_grace_s = max(self.retry_after_s, 1.0)
        self.quota = quota if quota is not None else AdaptivePanicQuota()
        self.clock = clock  # None: time.time, looked up at each call (so a host's mock.patch moves it)
        self._metrics = metrics
        self._window = VolatilityWindow(
            window_seconds,
            panic_threshold_enter,
            panic_threshold_exit,
            circuit_open_threshold,
            circuit_close_threshold,
            clock=clock if clock is not None else _wall_clock,
        )
        self._log = breaker_logger()
        self.worker_id = new_worker_id()
        self._decisions = DecisionLog(lambda: self._log, on_state_change)
        self._outage = Outage(lambda: self._log, lambda: describe_client(self.redis), self.retry_after_s)
        self._answers = AnswerCounts()
        self._refresh_lock = threading.Lock()
        self._sync = _NEVER
        self._steady = _NO_STEADY
        self._steady_epoch = 0  # bumped by every change a steady stretch depends on
        self._steady_lock = threading.Lock()
        self._retry_at = -math.inf
        self._panic_seen = False  # a panic call since the last round trip: the next one observes the clock
        self._epoch = 0  # the panic epoch this worker last observed (0: none yet)
        self._observe_after_s = self._spread_delay()
        self._episode_start: float | None = None  # the start this worker's logged state belongs to
        self._override = HonouredOverride(lambda: self._log, f"{key_prefix}{OVERRIDE_KEY_NAME}",
                                          max_s=self.max_override_s)
        self._started: float | None = None
        self._hexpire = True  # per-field expiry until the server says it has none (Redis < 7.4)
        self._host = socket.gethostname()
        self._beat_at = -math.inf
        self._separate = False  # on the non-atomic fallback (the script was refused), until the retry works
        self._separate_since = -math.inf
        self._scripting_retry_at = -math.inf
        self._scripting_backoff_s = self.scripting_retry_s
        self._warned_separate = False
        self._warned_not_configured = False
        self._warned_clock = False
        self._schedule_seen: tuple[str | None, str | None] = (None, None)
        self.scheduled_windows_applied = 0  # windows this worker materialized (the schedule step said APPLIED)
        _LIVE.add(self)
        if metrics is not None:  # a prometheus_client registry; imported here so that only its users load it
            from .metrics import instrument_breaker

            instrument_breaker(self, metrics)
        if redis_client is not None:
            risks = stall_risks(redis_client)
            if risks:
                self._log.warning(
                    "REDIS_CLIENT_MAY_STALL",
                    settings=risks,
                    target=describe_client(redis_client),
                    hint="build the client with breaker.redis_client(url) for 50 ms timeouts and no retries",
                )

    def _after_fork(self) -> None:
        """A forked child (gunicorn --preload, Celery prefork, multiprocessing): its own worker id, its own
        connection, a clean round-trip state. Locks are new (the parent's threads may have held them at the
        fork: a child forked mid round trip would otherwise never make one), counts start at zero, and the next
        call makes the child's first round trip (its first heartbeat) at once. The hot path checks nothing."""
        self.worker_id = new_worker_id()
        self._refresh_lock = threading.Lock()
        self._steady_lock = threading.Lock()
        self._steady_epoch += 1
        self._steady = _NO_STEADY
        self._sync = _NEVER
        self._retry_at = -math.inf
        self._beat_at = -math.inf
        self._started = None
        self._panic_seen = False
        self._observe_after_s = self._spread_delay()
        self._answers.forget()
        self._outage = Outage(lambda: self._log, lambda: describe_client(self.redis), self.retry_after_s)
        self._decisions._lock = threading.Lock()
        self._window._lock = threading.Lock()
        lane = self.panic_clock._lane if self.panic_clock is not None else None
        if lane is not None:
            lane.after_fork()
        pool = getattr(self.redis, "connection_pool", None)
        if pool is not None and getattr(pool, "pid", None) != os.getpid() and callable(getattr(pool, "reset", None)):
            pool.reset()  # what redis-py's own pid check does at the next checkout, done before anything else

    @classmethod
    def from_settings(cls, settings: Settings, redis_client: Any = None, **kwargs: Any) -> VIXCircuitBreaker:
        """A worker's breaker configured from ``Settings.from_env()``; the client defaults to ``settings.redis_url``."""
        if redis_client is None and settings.redis_url:
            try:
                redis_client = build_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
            except ValueError as exc:
                raise ConfigError(str(exc).replace("Redis URL", "REDIS_URL", 1)) from None
        options: dict[str, Any] = {
            "key_prefix": settings.key_prefix,
            "panic_key_ttl_s": settings.panic_key_ttl_s,
            "end_on_normal": settings.end_on_normal,
            "refresh_interval_s": settings.refresh_interval_s,
            "max_panic_age_h": settings.max_panic_age_h,
            "max_override_min": settings.max_override_min,
        }
        options.update(kwargs)
        return cls(redis_client, **options)

    @property
    def last_error(self) -> str | None:
        """The last Redis error of the outage in progress, None when Redis answers."""
        return self._outage.last_error

    # --- the hot path -------------------------------------------------------------------------------------

    def get_ttl(self, base_ttl: Any, vix_status: Any = "normal", match_context: Any = None) -> tuple[int, PanicMode]:
        """``(ttl, mode)`` for one cache write. Never raises; fails safe to ``(0, PANIC_FULL)``."""
        try:
            kind = _STATUS_KIND.get(vix_status) if type(vix_status) is str else None
            if kind is None:
                kind = _status_kind(vix_status)
            if kind is None:
                self._emit("error", "UNKNOWN_VIX_STATUS", vix_status=_short(vix_status), answer="PANIC_FULL")
                return self._bad_input()
            if type(base_ttl) is int and base_ttl >= 0:
                base = base_ttl
            else:
                try:
                    base = check_base_ttl(base_ttl)
                except (TypeError, ValueError) as exc:
                    self._emit("error", "INVALID_BASE_TTL", base_ttl=_short(base_ttl), error=str(exc),
                               answer="PANIC_FULL")
                    return self._bad_input()
            clock = self.clock
            now = clock() if clock is not None else time.time()
            if type(now) is not float or now - now != 0.0:  # finite floats pass; NaN and inf fail
                now = self._checked_now(now)
                if now is None:  # a broken local clock: nothing is measured or written with it
                    return (base, _NORMAL) if kind is _CALM else self._counted_fail_safe()
            steady = self._steady
            if steady.since <= now <= steady.until:  # the hot path: nothing to do but answer
                if kind is _CALM:
                    if steady.calm:
                        self._answers.count(_NORMAL)
                        return base, _NORMAL
                elif steady.panic and self.quota is steady.quota:
                    return self._steady_panic(steady, now, base, match_context)
            sync = self._sync
            due = not 0 <= now - sync.at < self.refresh_interval_s or (
                kind is _PANIC and sync.start is None and not now - sync.at < self._observe_after_s)
            tried = due and self._sync_if_due(now, kind)
            if kind is _CALM and self.end_on_normal and self.panic_clock is not None:
                self._end_on_calm(now)
            forced = self._override_mode(now) if self._override.current is not None else None
            steady = self._steady  # again: a round trip just made closes the stretch read above
            if forced is None and not steady.since <= now <= steady.until:
                self._steady_from(now)
            if forced is OverrideMode.FORCE_FULL:
                if kind is _PANIC:
                    self._panic_seen = True  # the clock keeps being observed under the override
                self._answers.count(_FULL)
                return _FAIL_SAFE
            if kind is _CALM or forced is OverrideMode.FORCE_CALM:
                self._answers.count(_NORMAL)
                return base, _NORMAL
            return self._panic(now, base, match_context, tried)
        except Exception as exc:  # the promise is "never raises"; the answer is still safe
            self._emit("error", "VIX_CIRCUIT_BREAKER_ERROR", error=repr(exc), answer="PANIC_FULL")
            return _FAIL_SAFE

    def _panic(self, now: float, base: int, match_context: Any, tried: bool) -> tuple[int, PanicMode]:
        self._panic_seen = True
        importance = self.quota.classify(match_context)
        sync = self._sync
        start = sync.start
        if start is None and not tried and 0 <= now - sync.at < self._observe_after_s and not self._outage.active:
            # the panic-start spread: a panic this worker has not observed yet answers its tier 1 (what a new
            # panic answers anyway) until its turn to observe comes, within one interval
            self._decisions.note(importance, _FULL, 1, 0, None, reliable=True)
            self._answers.count(_FULL, stakes=importance, tier=1)
            return _FAIL_SAFE
        if start is None or not 0 <= now - sync.at < self.refresh_interval_s + self._stale_grace_s:
            self._unreliable(tried)
            self._decisions.note(importance, _FULL, 1, 0, None,
                                 reliable=self.panic_clock is None and not self._outage.active)
            self._answers.count(_FULL, fail_safe=True, stakes=importance, tier=1)
            return _FAIL_SAFE
        measured = now + sync.offset
        duration_min = (measured - start) / 60.0 if measured > start else 0.0
        ttl, mode, tier = self.quota.decide(base, duration_min, importance, True)
        self._decisions.note(importance, mode, tier, ttl, start, reliable=not self._outage.active,
                             epoch=self._epoch or None)
        self._answers.count(mode, stakes=importance, tier=tier)
        return ttl, mode

    def _steady_panic(self, steady: _Steady, now: float, base: int, match_context: Any) -> tuple[int, PanicMode]:
        """``_panic`` inside a steady stretch: the same answer, tally and log, from the cached decision."""
        self._panic_seen = True
        quota = steady.quota
        importance = importance_of(match_context, quota.default_importance)  # what a plain quota's classify does
        answer = steady.answers.get(importance)
        if (answer is None or not answer.since <= now <= answer.until
                or quota.tables[importance] is not answer.table):
            answer = self._steady_answer(steady, now, importance)
        decisions = self._decisions
        if decisions.last.get(importance) != answer.state or decisions.debug_on is not False:
            decisions.note(importance, answer.mode, answer.tier, answer.ttl if answer.ttl < base else base,
                           steady.sync.start, reliable=not self._outage.active)
        self._answers.count(answer.mode_text, stakes=answer.stakes_text, tier=answer.tier)
        ttl = answer.ttl
        return (ttl if ttl < base else base), answer.mode

    def _steady_answer(self, steady: _Steady, now: float, importance: MatchImportance) -> _Answer:
        """Decide for ``importance`` at ``now`` exactly as ``_panic`` does, and find how long that holds.

        The tier is a non-decreasing function of local time (each float step is monotonic), so an answer that
        holds at both ends of a stretch holds inside it: the ends are checked with the very arithmetic of
        ``_panic``, a few ulps below the computed boundary when rounding puts that boundary a hair early."""
        offset, start = steady.sync.offset, steady.sync.start
        table = steady.quota.tables[importance]

        def tier_at(t: float) -> int:
            measured = t + offset
            return table.tier_for((measured - start) / 60.0 if measured > start else 0.0)

        tier = tier_at(now)
        until = steady.until
        if tier <= len(table.starts):
            boundary = start + table.starts[tier - 1] * 60.0 - offset
            if boundary < until:
                until = _last_time_before(boundary, lambda t: tier_at(t) == tier)
                until = now if until is None or until < now else until
        since = steady.since if tier_at(steady.since) == tier else now
        mode = MODE_OF_TIER[tier]
        answer = _Answer(since, until, table, table.ttls[tier - 1], mode, tier, str.__str__(mode),
                         str.__str__(importance), (mode, tier))
        steady.answers[importance] = answer
        return answer

    def _steady_from(self, now: float) -> None:
        """Open a steady stretch at ``now`` when nothing is due from now until the next round trip."""
        epoch = self._steady_epoch
        sync = self._sync
        interval = self.refresh_interval_s
        if not 0 <= now - sync.at < interval:
            return
        current = self._override.current
        if current is not None and now + sync.server_offset < current.until:
            return  # an override in force: every call takes the full path
        quota = self.quota
        if type(quota) is not AdaptivePanicQuota or "classify" in vars(quota) or "decide" in vars(quota):
            quota = None  # a team's own policy: its classify and decide run on every call
        until = _last_time_before(sync.at + interval, lambda t: t - sync.at < interval)
        if until is None or until < now:
            return
        steady = _Steady(now, until, not (self.end_on_normal and self.panic_clock is not None),
                         sync.start is not None and quota is not None, sync, quota, {})
        with self._steady_lock:
            if self._steady_epoch == epoch:
                self._steady = steady

    def _unsteady(self) -> None:
        """Something a steady stretch depends on changed (a round trip, a failure, a delete): close it."""
        with self._steady_lock:
            self._steady_epoch += 1
            self._steady = _NO_STEADY

    def _checked_now(self, value: Any) -> float | None:
        """A local clock reading that is not a finite float: as a float, or None (logged once)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        if not self._warned_clock:
            self._warned_clock = True
            self._emit("error", "INVALID_LOCAL_CLOCK", value=_short(value), answer="PANIC_FULL for panics")
        return None

    def _override_mode(self, now: float) -> OverrideMode | None:
        """The override in force (the last one seen, until its end in server time), or None."""
        return self._override.mode_at(now + self._sync.server_offset)

    def _counted_fail_safe(self) -> tuple[int, PanicMode]:
        self._answers.count(PanicMode.PANIC_FULL, fail_safe=True)
        return _FAIL_SAFE

    def _bad_input(self) -> tuple[int, PanicMode]:
        """A fail-safe answer to bad input, counted; the interval's round trip (the heartbeat) is still made
        when due (SPEC section 4), so a worker fed only bad input shows in the fleet with its fail-safe count."""
        self._answers.count(PanicMode.PANIC_FULL, fail_safe=True)
        try:
            clock = self.clock
            now = clock() if clock is not None else time.time()
            if type(now) is float and now - now == 0.0 and not 0 <= now - self._sync.at < self.refresh_interval_s:
                self._sync_if_due(now, _CALM)
        except Exception as exc:
            self._emit("error", "VIX_CIRCUIT_BREAKER_ERROR", error=repr(exc), answer="PANIC_FULL")
        return _FAIL_SAFE

    def _unreliable(self, tried: bool) -> None:
        """A fail-safe panic answer: say why, once (not configured) or once per outage."""
        if self.panic_clock is None:
            if not self._warned_not_configured:
                self._warned_not_configured = True
                self._log.warning("PANIC_WITHOUT_RELIABLE_TIMESTAMP", redis_status="not_configured",
                                  answer="PANIC_FULL")
        elif not tried:
            self._outage.answered_without_trying()

    def _emit(self, level: str, event: str, **fields: Any) -> None:
        """Log without ever raising: a broken log sink must not turn a fail-safe answer into an exception."""
        with contextlib.suppress(Exception):
            getattr(self._log, level)(event, **fields)

    # --- the one round trip per interval --------------------------------------------------------------------

    def _sync_if_due(self, now: float, kind: bool) -> bool:
        """Make this worker's round trip when one is due; True when this call made it (or tried).

        Due: ``refresh_interval_s`` after the last one, in every state; for a panic call when the last one did
        not observe the clock (no start known), ``_observe_after_s`` after the last one (this worker's share of
        the interval, drawn once: the panic-start burst spread over the interval, SPEC section 4), at once when
        there was none. Only one thread goes to Redis; the others answer from local state meanwhile (waiting for
        the lock would be waiting on the network).
        """
        sync = self._sync
        if 0 <= now - sync.at < self.refresh_interval_s and not (kind is _PANIC and sync.start is None
                                                                  and not now - sync.at < self._observe_after_s
                                                                  and not self._calm_forced(now)):
            return False
        if self.panic_clock is None or self._backing_off(now):
            return False
        if not self._refresh_lock.acquire(blocking=False):
            return False
        try:
            sync = self._sync
            if 0 <= now - sync.at < self.refresh_interval_s and not (kind is _PANIC and sync.start is None
                                                                      and not now - sync.at < self._observe_after_s):
                return False
            if self._backing_off(now):
                return False
            observe = (kind is _PANIC or self._panic_seen) and not self._calm_forced(now)
            self._round_trip(now, observe=observe, panic_call=kind is _PANIC)
            return True
        finally:
            self._refresh_lock.release()

    def _spread_delay(self) -> float:
        """How long after its last round trip a calm worker that meets a panic observes the clock: uniform over
        ``[0, refresh_interval_s)``, per worker, so that a fleet meeting a panic at the same moment observes it
        spread over one interval instead of all at once (0 with ``refresh_interval_s=0``)."""
        return random.random() * self.refresh_interval_s

    def _calm_forced(self, now: float) -> bool:
        return self._override_mode(now) is OverrideMode.FORCE_CALM

    def _round_trip(self, now: float, *, observe: bool, panic_call: bool) -> None:
        beating = not 0 <= now - self._beat_at < BEAT_MIN_SPACING_S  # refresh_interval_s=0: not one beat per call
        calls, fail_safe, tiers = self._answers.take() if beating else ({}, 0, {})
        forced = self._override_mode(now)
        beat = beat_json(
            host=self._host, pid=os.getpid(), started=self._started,  # None until the server said when
            interval_s=max(self.refresh_interval_s, BEAT_MIN_SPACING_S), calls=calls, fail_safe=fail_safe,
            tiers=tiers, override=forced.value if forced else None, error=self._outage.last_error,
            version=__version__, overrides_seen=self._override.changes, epoch=self._epoch or None,
        ) if beating else ""
        # the skew and the aggregates ride on the beat: a round trip without one (refresh_interval_s below
        # BEAT_MIN_SPACING_S) passes only the epoch it knows
        if calls or fail_safe:
            state = answer_state(calls, fail_safe)
        else:  # a first beat (nothing counted yet): the answer this very call is about to give, not "calm"
            state = "panic" if forced is OverrideMode.FORCE_FULL or (
                panic_call and forced is not OverrideMode.FORCE_CALM) else "calm"
        aggregate = {"local_now": format_ts(now), "epoch": self._epoch, "state": state,
                     "calls": calls, "fail_safe": fail_safe, "tiers": tiers, "overridden": forced is not None,
                     "interval_s": self.refresh_interval_s} if beating else {"epoch": self._epoch}
        try:
            reply = self._exchange(now, observe, beat, aggregate)
            observation = observation_of(reply) if observe else None
        except Exception as exc:  # an UnusableStart (no script to replace it) is logged as what it is
            self._answers.give_back(calls, fail_safe, tiers)
            self._failed(now, exc, panic_call=panic_call,
                         event="INVALID_PANIC_TIMESTAMP" if isinstance(exc, UnusableStart) else None)
            return
        server_offset = reply.server_now - now
        start = None
        if observation is not None:
            start = observation.start
            if start != self._episode_start:
                if self._episode_start is not None:
                    self._decisions.new_episode()  # a new panic: log it from its first tier, even tier 1 again
                self._episode_start = start
            if observation.replaced_raw is not None:
                self._log.error("INVALID_PANIC_TIMESTAMP", key=self.panic_clock.start_key,
                                value=_short(observation.replaced_raw), replaced_with=start)
            elif observation.initialized:
                self._log.warning("PANIC_TIMESTAMP_INITIALIZED", key=self.panic_clock.start_key, start=start)
        if reply.epoch is not None and reply.epoch != self._epoch:
            if self._epoch and reply.epoch:
                self._log.info("PANIC_EPOCH_CHANGED", previous=self._epoch, epoch=reply.epoch, start=start)
            self._epoch = reply.epoch
        if self._started is None:
            self._started = reply.server_now
        if beating:
            self._beat_at = now
        self._sync = _Sync(now, server_offset if self.server_time else 0.0, server_offset, start)
        self._panic_seen = False
        if reply.beat == refresh.BEAT_NO_HEXPIRE:
            self._hexpire = False  # detected once: this server prunes nothing itself, readers do
        self._note_schedule(reply)
        self._override.adopt(reply.override_raw, reply.override_len, reply.server_now)
        self._decisions.recheck_level()
        self._unsteady()
        self._outage.recovered(now)

    def _note_schedule(self, reply: refresh.Reply) -> None:
        """Log what the schedule step did when it changes: the window this worker materialized (APPLIED: exactly
        one worker of the fleet sees it), a window skipped or held back by a manual override, a schedule member
        that is not a window, an error. Between windows (NONE) and inside one (IN_FORCE) nothing is logged."""
        seen = (reply.schedule, reply.window_id)
        if reply.schedule is None or seen == self._schedule_seen:
            return
        self._schedule_seen = seen
        if reply.schedule == schedule.APPLIED:
            self.scheduled_windows_applied += 1
            self._log.warning("SCHEDULED_WINDOW_APPLIED", window=reply.window_id, override=self._override.key)
        elif reply.schedule in (schedule.SKIPPED, schedule.MANUAL):
            self._log.info("SCHEDULED_WINDOW_NOT_APPLIED", window=reply.window_id, status=reply.schedule)
        elif reply.schedule in (schedule.INVALID, schedule.ERROR):
            self._log.warning("SCHEDULE_STEP_" + reply.schedule.upper(), key=self.panic_clock.schedule_key)

    def _exchange(self, now: float, observe: bool, beat: str, aggregate: dict[str, Any]) -> refresh.Reply:
        clock = self.panic_clock
        at = None if self.server_time else now
        ttl = beat_ttl_s(max(self.refresh_interval_s, BEAT_MIN_SPACING_S))
        if clock.scripting and (not self._separate or self._scripting_due(now)):
            try:
                reply = clock.round_trip(observe=observe, now=at, worker_id=self.worker_id, beat=beat,
                                         beat_ttl_s=ttl, hexpire=self._hexpire, max_override_s=self.max_override_s,
                                         **aggregate)
            except NoAtomicCommands as exc:
                self._fall_back(now, str(exc))
            else:
                if self._separate:
                    self._separate = False
                    self._log.info("REDIS_SCRIPTING_RESTORED", after_failed_s=round(now - self._separate_since, 1))
                return reply
        elif not clock.scripting and not self._warned_separate:  # a client without evalsha: nothing to retry
            self._warned_separate = True
            self._log.warning("REDIS_WITHOUT_SCRIPTING", reason=f"{type(self.redis).__name__} has no evalsha",
                              fallback=_FALLBACK_TEXT)
        return clock.separate_round_trip(observe=observe, now=at, fallback_now=now, worker_id=self.worker_id,
                                         beat=beat)

    def _fall_back(self, now: float, reason: str) -> None:
        """The script was refused ("unknown command", NOPERM, a script that cannot load): the non-atomic fallback
        is a state, not a verdict. Logged once on the way in; the script is tried again after
        ``scripting_retry_s``, doubling per refusal up to ``SCRIPTING_RETRY_CAP_S``."""
        if not self._separate:
            self._separate = True
            self._separate_since = now
            self._scripting_backoff_s = self.scripting_retry_s
            self._log.warning("REDIS_WITHOUT_SCRIPTING", reason=reason[:200], fallback=_FALLBACK_TEXT,
                              retry_in_s=self._scripting_backoff_s)
        else:
            self._scripting_backoff_s = min(self._scripting_backoff_s * 2, max(SCRIPTING_RETRY_CAP_S,
                                                                               self.scripting_retry_s))
        self._scripting_retry_at = now + self._scripting_backoff_s

    def _scripting_due(self, now: float) -> bool:
        """Time to try the script again; a wall clock stepped back does not stretch the wait."""
        return not now < self._scripting_retry_at <= now + self._scripting_backoff_s

    def _end_on_calm(self, now: float) -> None:
        """Seed mode: every calm observation deletes the clock."""
        # Backing off, or another thread is on the network (perhaps hung): the next calm call deletes.
        if self._backing_off(now) or not self._refresh_lock.acquire(blocking=False):
            return
        try:
            deleted = self.panic_clock.end()
        except Exception as exc:
            self._failed(now, exc, panic_call=False)
            return
        finally:
            self._refresh_lock.release()
        self._sync = self._sync._replace(start=None)
        self._unsteady()
        self._outage.recovered(now)
        if deleted:
            self._decisions.new_episode()  # the next panic is a new episode, logged from tier 1
            self._log.info("PANIC_TIMESTAMP_CLEARED", key=self.panic_clock.start_key)

    def _backing_off(self, now: float) -> bool:
        """Inside ``retry_after_s`` of a failure; a wall clock stepped back does not stretch the back-off."""
        return now < self._retry_at <= now + self.retry_after_s

    def _failed(self, now: float, exc: Exception, *, panic_call: bool, event: str | None = None) -> None:
        self._retry_at = now + self.retry_after_s
        self._sync = self._sync._replace(at=-math.inf, start=None)
        self._unsteady()
        self._outage.failed(now, exc, answered_fail_safe=panic_call, event=event)

    # --- the older per-process API ----------------------------------------------------------------------------

    def get_adaptive_ttl(self, vix_status: Any, base_ttl: Any = None) -> tuple[int, str]:
        """The older per-process API: a rolling window and hysteresis, no Redis."""
        base = 60 if base_ttl is None else check_base_ttl(base_ttl)
        status = self._legacy_status(vix_status)
        self._record(status)
        return self._window.ttl_for(status, base)

    def record_panic_status(self, status: Any) -> CircuitBreakerMode:
        """Add one sample to the rolling window (unknown statuses count as panic)."""
        return self._record(self._legacy_status(status))

    def _record(self, status: str) -> CircuitBreakerMode:
        previous, mode = self._window.record(status)
        if mode is not previous:
            self._log.info("CIRCUIT_MODE_CHANGE", previous_mode=previous.value, mode=mode.value,
                           panic_ratio_pct=round(100 * self._window.panic_ratio, 2))
        return mode

    def _legacy_status(self, vix_status: Any) -> str:
        status = _status_text(vix_status)
        if status not in VALID_STATUSES:
            self._log.error("UNKNOWN_VIX_STATUS", vix_status=_short(vix_status), counted_as="panic")
            return "panic"
        return status

    def get_metrics(self) -> dict[str, Any]:
        return self._window.metrics()

    @property
    def mode(self) -> CircuitBreakerMode:
        return self._window.mode

    @property
    def panic_history(self) -> tuple[int, ...]:
        """The legacy window's samples, oldest first (1 panic, 0 otherwise): a read-only snapshot."""
        return self._window.samples

    def reset(self) -> None:
        """Empty the legacy window and return it to normal mode (the seed's ``reset``, for tests and
        drills). The shared panic clock is global and untouched: operators end or clear it."""
        self._window.reset()
        self._emit("warning", "LEGACY_WINDOW_RESET")
