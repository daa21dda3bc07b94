"""``VIXCircuitBreaker``: the shared panic clock composed with the tier policy.

The one promise: a panic whose start cannot be read reliably answers TTL 0
(``PANIC_FULL``). Every other choice here serves two more: a worker never waits
on a sick Redis for longer than one timeout per ``retry_after_s``, and a steady
state writes no log lines beyond DEBUG.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from .client import describe_client, stall_risks
from .client import redis_client as build_client
from .clock import DEFAULT_KEY_PREFIX, SEED_KEY_TTL_S, PanicClock, check_key_ttl, default_key_ttl_s
from .config import Settings
from .importance import MatchImportance
from .logs import breaker_logger
from .policy import AdaptivePanicQuota, PanicMode, check_base_ttl
from .volatility import VALID_STATUSES, CircuitBreakerMode, VolatilityWindow

PANIC_START_TS_KEY = f"{DEFAULT_KEY_PREFIX}panic_start_ts"
PANIC_TS_TTL_SECONDS = SEED_KEY_TTL_S

_PANIC, _CALM = True, False
_STATUS_KIND = {"panic": _PANIC, "normal": _CALM, "warning": _CALM}
_FAIL_SAFE = (0, PanicMode.PANIC_FULL)
_NO_CACHE = (None, -math.inf)

StateListener = Callable[[dict[str, Any]], None]


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


class VIXCircuitBreaker:
    """Answers ``(ttl, mode)`` for a cache write, failing safe to TTL 0 during a panic."""

    def __init__(
        self,
        redis_client: Any = None,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        panic_key_ttl_s: int | None = None,
        end_on_normal: bool = False,
        refresh_interval_s: float = 1.0,
        retry_after_s: float = 1.0,
        quota: AdaptivePanicQuota | None = None,
        clock: Callable[[], float] = time.time,
        window_seconds: int = 1800,
        panic_threshold_enter: float = 0.50,
        panic_threshold_exit: float = 0.30,
        circuit_open_threshold: float = 0.80,
        circuit_close_threshold: float = 0.60,
        on_state_change: StateListener | None = None,
        metrics: Any = None,
    ) -> None:
        for name, value in (("refresh_interval_s", refresh_interval_s), ("retry_after_s", retry_after_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        if panic_key_ttl_s is None:
            panic_key_ttl_s = default_key_ttl_s(end_on_normal)
        check_key_ttl(panic_key_ttl_s)
        self.redis = redis_client
        self.panic_clock = (
            PanicClock(redis_client, key_prefix=key_prefix, panic_key_ttl_s=panic_key_ttl_s)
            if redis_client is not None
            else None
        )
        self.key_prefix = key_prefix
        self.panic_key_ttl_s = panic_key_ttl_s
        self.end_on_normal = bool(end_on_normal)
        self.refresh_interval_s = float(refresh_interval_s)
        self.retry_after_s = float(retry_after_s)
        # How long other threads may keep using a start while one thread's refresh is still in flight.
        self._stale_grace_s = max(self.retry_after_s, 1.0)
        self.quota = quota if quota is not None else AdaptivePanicQuota()
        self.clock = clock
        self.on_state_change = on_state_change
        self._window = VolatilityWindow(
            window_seconds,
            panic_threshold_enter,
            panic_threshold_exit,
            circuit_open_threshold,
            circuit_close_threshold,
            clock=clock,
        )
        self._log = breaker_logger()
        self._refresh_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._cached: tuple[float | None, float] = _NO_CACHE  # (start, fetched_at)
        self._retry_at = -math.inf
        self._episode_start: float | None = None  # the start this worker's logged state belongs to
        self._outage: dict[str, Any] | None = None
        self._answered_while_probing = 0  # fail-safe answers given while a probe was in flight
        self._warned_not_configured = False
        self._last_decision: dict[MatchImportance, tuple[PanicMode, int]] = {}
        self._debug_on: bool | None = None  # read from the logger once per refresh, not once per call
        self.last_error: str | None = None
        if metrics is not None:  # a prometheus_client registry; imported here so that only its users load it
            from .metrics import instrument_breaker

            instrument_breaker(self, metrics, _FAIL_SAFE)
        if redis_client is not None:
            risks = stall_risks(redis_client)
            if risks:
                self._log.warning(
                    "REDIS_CLIENT_MAY_STALL",
                    settings=risks,
                    target=describe_client(redis_client),
                    hint="build the client with breaker.redis_client(url) for 50 ms timeouts and no retries",
                )

    @classmethod
    def from_settings(cls, settings: Settings, redis_client: Any = None, **kwargs: Any) -> VIXCircuitBreaker:
        """A worker's breaker configured from ``Settings.from_env()``; the client defaults to ``settings.redis_url``."""
        if redis_client is None and settings.redis_url:
            redis_client = build_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
        options: dict[str, Any] = {
            "key_prefix": settings.key_prefix,
            "panic_key_ttl_s": settings.panic_key_ttl_s,
            "end_on_normal": settings.end_on_normal,
            "refresh_interval_s": settings.refresh_interval_s,
        }
        options.update(kwargs)
        return cls(redis_client, **options)

    def get_ttl(self, base_ttl: Any, vix_status: Any = "normal", match_context: Any = None) -> tuple[int, PanicMode]:
        """``(ttl, mode)`` for one cache write. Never raises; fails safe to ``(0, PANIC_FULL)``."""
        try:
            kind = _status_kind(vix_status)
            if kind is None:
                self._emit("error", "UNKNOWN_VIX_STATUS", vix_status=_short(vix_status), answer="PANIC_FULL")
                return _FAIL_SAFE
            if type(base_ttl) is int and base_ttl >= 0:
                base = base_ttl
            else:
                try:
                    base = check_base_ttl(base_ttl)
                except (TypeError, ValueError) as exc:
                    self._emit("error", "INVALID_BASE_TTL", base_ttl=_short(base_ttl), error=str(exc),
                               answer="PANIC_FULL")
                    return _FAIL_SAFE
            if kind is _CALM:
                return self._calm(base)
            return self._panic(base, match_context)
        except Exception as exc:  # the promise is "never raises"; the answer is still safe
            self._emit("error", "VIX_CIRCUIT_BREAKER_ERROR", error=repr(exc), answer="PANIC_FULL")
            return _FAIL_SAFE

    def _emit(self, level: str, event: str, **fields: Any) -> None:
        """Log without ever raising: a broken log sink must not turn a fail-safe answer into an exception."""
        with contextlib.suppress(Exception):
            getattr(self._log, level)(event, **fields)

    def _calm(self, base: int) -> tuple[int, PanicMode]:
        """A calm market: the base TTL. The signal is per market and the clock is global, so a calm answer
        says nothing about the panic's state and changes no logged state."""
        if self.end_on_normal and self.panic_clock is not None:
            self._end_on_calm()
        return base, PanicMode.NORMAL

    def _panic(self, base: int, match_context: Any) -> tuple[int, PanicMode]:
        now = self.clock()
        start = self._shared_start(now)
        importance = self.quota.classify(match_context)
        if start is None:
            self._note(importance, PanicMode.PANIC_FULL, 1, 0, None)
            return _FAIL_SAFE
        duration_min = (now - start) / 60.0 if now > start else 0.0
        ttl, mode, tier = self.quota.decide(base, duration_min, importance, True)
        self._note(importance, mode, tier, ttl, start)
        return ttl, mode

    def _shared_start(self, now: float) -> float | None:
        """The agreed panic start: from the local cache within ``refresh_interval_s``, else one round trip."""
        start, fetched_at = self._cached
        if start is not None and 0 <= now - fetched_at < self.refresh_interval_s:
            return start
        if self.panic_clock is None:
            self._fail_safe_not_configured()
            return None
        if self._backing_off(now):
            self._count_outage_call()
            return None
        # Only one thread goes to Redis; the others answer at once: with the previous start while it
        # does, or fail-safe when there is none (waiting for the lock would be waiting on the network).
        if not self._refresh_lock.acquire(blocking=False):
            if start is not None and 0 <= now - fetched_at < self.refresh_interval_s + self._stale_grace_s:
                return start
            self._count_outage_call()  # no start, or one nobody could confirm for too long: fail safe
            return None
        try:
            start, fetched_at = self._cached
            if start is not None and 0 <= now - fetched_at < self.refresh_interval_s:
                return start
            if self._backing_off(now):
                self._count_outage_call()
                return None
            try:
                observation = self.panic_clock.observe(now)
            except Exception as exc:
                self._redis_failed(now, exc)
                return None
            if observation.start != self._episode_start:
                if self._episode_start is not None:
                    with self._state_lock:
                        self._last_decision.clear()  # a new panic: log it from its first tier, even tier 1 again
                self._episode_start = observation.start
            self._cached = (observation.start, now)
            self._debug_on = None  # logging may have been reconfigured since: look again at the next decision
        finally:
            self._refresh_lock.release()
        self._redis_ok()
        if observation.replaced_raw is not None:
            self._log.error(
                "INVALID_PANIC_TIMESTAMP", key=self.panic_clock.start_key, value=_short(observation.replaced_raw),
                replaced_with=observation.start,
            )
        elif observation.initialized:
            self._log.warning("PANIC_TIMESTAMP_INITIALIZED", key=self.panic_clock.start_key, start=observation.start)
        return observation.start

    def _end_on_calm(self) -> None:
        """Seed mode: every calm observation deletes the clock."""
        now = self.clock()
        # Backing off, or another thread is on the network (perhaps hung): the next calm call deletes.
        if self._backing_off(now) or not self._refresh_lock.acquire(blocking=False):
            return
        try:
            deleted = self.panic_clock.end()
        except Exception as exc:
            self._redis_failed(now, exc)
            return
        finally:
            self._refresh_lock.release()
        self._cached = _NO_CACHE
        self._redis_ok()
        if deleted:
            with self._state_lock:
                self._last_decision.clear()  # the next panic is a new episode, logged from tier 1
            self._log.info("PANIC_TIMESTAMP_CLEARED", key=self.panic_clock.start_key)

    def _backing_off(self, now: float) -> bool:
        """Inside ``retry_after_s`` of a failure; a wall clock stepped back does not stretch the back-off."""
        return now < self._retry_at <= now + self.retry_after_s

    def _redis_failed(self, now: float, exc: Exception) -> None:
        self._retry_at = now + self.retry_after_s
        self._cached = _NO_CACHE
        self.last_error = f"{type(exc).__name__}: {exc}"  # redis-py 8's repr drops the message
        with self._state_lock:
            first = self._outage is None
            if first:
                self._outage = {"since": now, "calls": 1 + self._answered_while_probing, "warned": False}
                self._answered_while_probing = 0
            else:
                self._outage["calls"] += 1
        if first:
            event = "REDIS_UNAVAILABLE" if isinstance(exc, (RedisError, OSError)) else "VIX_CIRCUIT_BREAKER_ERROR"
            self._log.error(
                event, redis_status="configured_but_error", error=self.last_error,
                target=describe_client(self.redis), retry_after_s=self.retry_after_s, answer="PANIC_FULL",
            )

    def _count_outage_call(self) -> None:
        with self._state_lock:
            outage = self._outage
            if outage is None:
                self._answered_while_probing += 1
                return
            outage["calls"] += 1
            warn = not outage["warned"]
            outage["warned"] = True
        if warn:
            self._log.warning(
                "PANIC_WITHOUT_RELIABLE_TIMESTAMP", redis_status="configured_but_error", answer="PANIC_FULL"
            )

    def _redis_ok(self) -> None:
        self._answered_while_probing = 0
        if self._outage is None:
            return
        with self._state_lock:
            outage, self._outage = self._outage, None
        if outage is not None:
            self.last_error = None
            self._log.info(
                "REDIS_RECOVERED", calls_answered_fail_safe=outage["calls"],
                outage_s=round(self.clock() - outage["since"], 3),
            )

    def _fail_safe_not_configured(self) -> None:
        if not self._warned_not_configured:
            self._warned_not_configured = True
            self._log.warning("PANIC_WITHOUT_RELIABLE_TIMESTAMP", redis_status="not_configured", answer="PANIC_FULL")

    def _debug_enabled(self) -> bool:
        """Whether to build DEBUG lines at all; True when the logger cannot say (it then filters them itself)."""
        try:
            return bool(self._log.is_enabled_for(logging.DEBUG))
        except Exception:
            return True

    def _note(self, importance: MatchImportance, mode: PanicMode, tier: int, ttl: int, start: float | None) -> None:
        """Log on change: INFO when a stakes class changes mode or tier, DEBUG otherwise."""
        state = (mode, tier)
        previous = self._last_decision.get(importance)
        if previous == state:
            debug_on = self._debug_on
            if debug_on is None:
                debug_on = self._debug_on = self._debug_enabled()
            if debug_on:
                self._log.debug("VIX_TTL_DECISION", match_importance=importance.value, mode=mode.value, tier=tier,
                                ttl=ttl)
            return
        with self._state_lock:
            previous = self._last_decision.get(importance)
            if previous == state:
                return
            self._last_decision[importance] = state
        event = {
            "match_importance": importance.value,
            "mode": mode.value,
            "tier": tier,
            "ttl": ttl,
            "previous_mode": previous[0].value if previous else None,
            "previous_tier": previous[1] if previous else None,
            "panic_start": start,  # which episode: a new start means the previous panic is over
        }
        self._log.info("VIX_TTL_STATE_CHANGE", **event)
        # A listener that writes to the same Redis would wait on it: skip it during an outage, and for any
        # fail-safe answer of a configured breaker (a refresh may be hanging without an outage declared yet).
        unreliable = self._outage is not None or (start is None and self.panic_clock is not None)
        if self.on_state_change is not None and not unreliable:
            try:
                self.on_state_change(event)
            except Exception as exc:  # a listener (the audit trail) must not change the answer
                self._log.warning("STATE_LISTENER_FAILED", error=repr(exc))

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
