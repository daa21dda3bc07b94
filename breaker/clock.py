"""The shared panic clock: every Redis command about the panic start lives here.

Protocol (SPEC section 3): ``{prefix}panic_start_ts`` holds the panic start as a
decimal Unix timestamp in the server's time. A panic observation is one atomic
round trip (the script of ``breaker.refresh``): set if absent (first writer wins),
read, (re)set the expiry (both the dead man's switch and the calm period), replace
an unusable value, plus ``{prefix}panic_last_seen_ts`` so that operators can see
when the clock was last fed. Without scripting it falls back to the seed's separate
commands. Errors from the client propagate: deciding what a failure means is the
breaker's job, not the clock's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from redis.exceptions import NoScriptError, ResponseError, WatchError

from . import refresh, wire
from .client import is_cluster_client
from .heartbeat import AGG_KEY_NAME, GONE_AFTER_S, WORKERS_KEY_NAME
from .keyspace import default_key_prefix, queue_time
from .override import OVERRIDE_KEY_NAME
from .schedule import SCHEDULE_KEY_NAME

AUDIT_KEY_NAME = "audit"  # the operators' audit stream (``breaker.ops.audit``): the schedule step appends to it

DEFAULT_KEY_PREFIX = "brain:"


def client_key_prefix(client: Any) -> str:
    """The production prefix for ``client``: ``{brain}:`` on a Redis Cluster client (one hash slot), else
    ``brain:``. What every tool built on a client without a prefix uses, as the breaker does."""
    return default_key_prefix(is_cluster_client(client))
DEFAULT_PANIC_KEY_TTL_S = 900
SEED_KEY_TTL_S = 86400
START_KEY_NAME = "panic_start_ts"
LAST_SEEN_KEY_NAME = "panic_last_seen_ts"
EPOCH_KEY_NAME = "panic_epoch"  # INCR by the first writer of each new start (its epoch)
DEFAULT_MAX_PANIC_AGE_H = 48.0  # BREAKER_MAX_PANIC_AGE_H: no real panic runs two days on one clock


def parse_start(raw: Any) -> float | None:
    """The stored start as seconds since the epoch, or None when it is not a usable timestamp.

    Accepts bytes or str. Rejects garbage, NaN, infinities and non-positive values
    (no panic started before 1970: such a value was written by hand or by a bug).
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(raw, str) or not raw.isascii() or "_" in raw:
        return None  # float() also reads "１８" and "1_8": not the decimal string the protocol writes
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return value


def usable_start(raw: Any, now: float, max_age_s: float) -> float | None:
    """The one definition of a usable start (SPEC section 3), shared by workers and operators' readings: it
    parses (``parse_start``), is at most ``refresh.MAX_AHEAD_S`` ahead of ``now`` and at most ``max_age_s``
    behind it. A start decades old (a broken tool, a monotonic-clock reading such as ``12345.6``) would put
    every worker at its last tier at once; it is replaced like garbage."""
    start = parse_start(raw)
    if start is None or start > now + refresh.MAX_AHEAD_S or start < now - max_age_s:
        return None
    return start


def check_max_panic_age_s(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"max_panic_age must be a positive finite number, got {value!r}")
    return float(value)


def default_key_ttl_s(end_on_normal: bool) -> int:
    """Seed mode's panics end by deletion, so its key lives a day (the seed's 86400); otherwise the
    expiry is the calm period."""
    return SEED_KEY_TTL_S if end_on_normal else DEFAULT_PANIC_KEY_TTL_S


def check_key_ttl(panic_key_ttl_s: Any) -> None:
    if not isinstance(panic_key_ttl_s, int) or isinstance(panic_key_ttl_s, bool) or panic_key_ttl_s < 1:
        raise ValueError(f"panic_key_ttl_s must be a whole number of seconds >= 1, got {panic_key_ttl_s!r}")


def format_ts(ts: float) -> str:
    return repr(float(ts))


class Observation(NamedTuple):
    """What one panic observation learned: the agreed start, and what this call changed."""

    start: float
    initialized: bool
    replaced_raw: Any = None  # the unusable value this call replaced, if any


@dataclass(frozen=True)
class ClockReading:
    """A consistent snapshot of the clock for operators (one MULTI/EXEC round trip)."""

    now: float
    exists: bool
    raw: Any
    start: float | None
    wrong_type: bool
    expiry_left_s: float | None  # None: no key, or a key without expiry (see has_expiry)
    has_expiry: bool
    last_observed_at: float | None
    implausible: bool = False  # parses, but older than the maximum panic age: workers replace it

    @property
    def parses(self) -> bool:
        return self.start is not None

    @property
    def duration_s(self) -> float | None:
        """Seconds since the start; 0 for a start in the future (clock skew counts as a fresh panic)."""
        if self.start is None:
            return None
        return max(0.0, self.now - self.start)

    @property
    def starts_in_future(self) -> bool:
        return self.start is not None and self.start > self.now

    @property
    def since_last_observation_s(self) -> float | None:
        if self.last_observed_at is None:
            return None
        return max(0.0, self.now - self.last_observed_at)


class NoAtomicCommands(Exception):
    """The server, a proxy, an ACL rule or the client itself offers no script: the protocol's atomic round
    trip is impossible here, and the caller falls back to the seed's separate commands."""


class UnusableStart(ValueError):
    """The stored start is unusable and could not be replaced atomically; its expiry was not renewed."""

    def __init__(self, raw: Any) -> None:
        super().__init__(f"unusable panic start {_describe(raw)!r} (not replaced: no atomic command available)")
        self.raw = _describe(raw)


_NO_SCRIPT_WORDS = ("unknown command", "noperm", "unsupported", "not supported", "no permissions")


def _lacks_scripting(exc: Exception) -> bool:
    return isinstance(exc, ResponseError) and any(word in str(exc).lower() for word in _NO_SCRIPT_WORDS)


class PanicClock:
    """The Redis protocol of the shared panic clock for one key prefix."""

    def __init__(
        self,
        client: Any,
        *,
        key_prefix: str | None = None,
        panic_key_ttl_s: int = DEFAULT_PANIC_KEY_TTL_S,
        keep_connection: bool = False,
        max_panic_age_s: float = DEFAULT_MAX_PANIC_AGE_H * 3600,
    ) -> None:
        check_key_ttl(panic_key_ttl_s)
        self.max_panic_age_s = check_max_panic_age_s(max_panic_age_s)
        key_prefix = client_key_prefix(client) if key_prefix is None else key_prefix
        self.client = client
        self.key_prefix = key_prefix
        self.panic_key_ttl_s = panic_key_ttl_s
        self.start_key = f"{key_prefix}{START_KEY_NAME}"
        self.last_seen_key = f"{key_prefix}{LAST_SEEN_KEY_NAME}"
        self.override_key = f"{key_prefix}{OVERRIDE_KEY_NAME}"
        self.workers_key = f"{key_prefix}{WORKERS_KEY_NAME}"
        self.agg_key = f"{key_prefix}{AGG_KEY_NAME}"
        self.epoch_key = f"{key_prefix}{EPOCH_KEY_NAME}"
        self.schedule_key = f"{key_prefix}{SCHEDULE_KEY_NAME}"
        self.audit_key = f"{key_prefix}{AUDIT_KEY_NAME}"
        self._keys = tuple(k.encode() for k in (self.start_key, self.last_seen_key, self.override_key,
                                                 self.workers_key, self.agg_key, self.epoch_key,
                                                 self.schedule_key, self.audit_key))
        self._bounded = wire.can_bound(client)
        #: ``keep_connection``: a worker's clock keeps one pooled connection between round trips (wire.Lane).
        self._lane = wire.Lane(client) if keep_connection and wire.can_keep(client) else None
        #: False for a client without scripting (a minimal double with get/set/expire/delete).
        self.scripting = callable(getattr(client, "evalsha", None))

    def round_trip(
        self,
        *,
        observe: bool,
        now: float | None = None,
        worker_id: str = "",
        beat: str = "",
        beat_ttl_s: int = GONE_AFTER_S,
        hexpire: bool = True,
        budget_s: float | None = None,
        **aggregate: Any,
    ) -> refresh.Reply:
        """The worker's one round trip (``refresh.SCRIPT``); ``now=None`` measures in the server's time.

        ``budget_s`` bounds the whole call (default: the client's read timeout) when the client allows it.
        Raises ``NoAtomicCommands`` when scripting is unavailable, redis-py errors otherwise.
        """
        if not self.scripting:
            raise NoAtomicCommands(f"{type(self.client).__name__} has no evalsha")
        args = refresh.arguments(
            self._keys, observe=observe, now="" if now is None else format_ts(now), ttl_s=self.panic_key_ttl_s,
            worker_id=worker_id, beat=beat, beat_ttl_s=beat_ttl_s, hexpire=hexpire, ascii_only=not self._bounded,
            max_age_s=self.max_panic_age_s, **aggregate,
        )
        try:
            if self._bounded:
                reply = self._call_bounded(args, wire.timeout_s(self.client) if budget_s is None else budget_s)
            else:
                try:
                    reply = self.client.evalsha(refresh.SCRIPT_SHA.decode(), *args)
                except NoScriptError:
                    reply = self.client.eval(refresh.SCRIPT, *args)
        except ResponseError as exc:
            if _lacks_scripting(exc):
                raise NoAtomicCommands(str(exc)) from exc
            raise
        return refresh.parse_reply(reply)

    def _call_bounded(self, args: list[bytes], budget_s: float) -> Any:
        deadline = time.monotonic() + budget_s
        try:
            return self._wire_call(wire.pack(b"EVALSHA", refresh.SCRIPT_SHA, *args), budget_s)
        except NoScriptError:
            left = max(0.0, deadline - time.monotonic())
            return self._wire_call(wire.pack(b"EVAL", refresh.SCRIPT_BYTES, *args), left)

    def _wire_call(self, command: bytes, budget_s: float) -> Any:
        if self._lane is not None:
            return self._lane.call(command, budget_s=budget_s)
        return wire.call(self.client, command, budget_s=budget_s)

    def observe(self, now: float | None = None) -> Observation:
        """Record a panic observation in one atomic round trip and return the agreed start.

        ``now=None`` writes the server's time. Unusable values (garbage, NaN, inf, <= 0, another type, more
        than 60 s ahead of ``now``) are replaced by ``now`` in the same step.
        """
        if not self.scripting:
            return self.observe_separately(now)
        return observation_of(self.round_trip(observe=True, now=now))

    def observe_separately(self, now: float | None) -> Observation:
        """The seed's protocol, for servers, proxies, ACL users or clients without scripting: SET NX EX, GET,
        EXPIRE as separate commands (still first writer wins). An unusable value cannot be replaced safely
        without an atomic step: ``UnusableStart`` is raised and its expiry is NOT renewed, so it ends."""
        if now is None:
            now = server_time(self.client.time()) if callable(getattr(self.client, "time", None)) else time.time()
        stamp = format_ts(now)
        ttl = self.panic_key_ttl_s
        created = self.client.set(self.start_key, stamp, nx=True, ex=ttl)
        raw = self.client.get(self.start_key)
        start = usable_start(raw, now, self.max_panic_age_s)
        if start is None:
            raise UnusableStart(raw)
        self.client.expire(self.start_key, ttl)
        self.client.set(self.last_seen_key, stamp, ex=ttl)  # the last-observed mark, as the script writes it
        return Observation(start, initialized=bool(created))

    def separate_round_trip(
        self, *, observe: bool, now: float | None, fallback_now: float, worker_id: str = "", beat: str = ""
    ) -> refresh.Reply:
        """The round trip without scripting: the seed's separate commands, and the override and beat as far as
        the client offers them (a minimal client with get/set/expire/delete gets no beat). Server time comes
        from ``TIME`` when the client has it, else the local clock is all there is."""
        client = self.client
        server_now = server_time(client.time()) if now is None and callable(getattr(client, "time", None)) else None
        measured = now if now is not None else (server_now if server_now is not None else fallback_now)
        observation = self.observe_separately(measured) if observe else None
        override = client.get(self.override_key)
        if isinstance(override, str):
            override = override.encode("utf-8", "replace")
        beat_state = refresh.BEAT_NOT_SENT
        if beat and callable(getattr(client, "hset", None)):
            try:
                client.hset(self.workers_key, worker_id, f"{beat}{format_ts(measured)}}}")
                beat_state = refresh.BEAT_NO_HEXPIRE
            except ResponseError:
                beat_state = refresh.BEAT_FAILED
        return refresh.Reply(
            server_now=measured if server_now is None else server_now,
            start_raw=format_ts(observation.start).encode() if observation else None,
            initialized=bool(observation and observation.initialized),
            replaced=None,
            override_raw=override,
            override_len=len(override) if override is not None else 0,
            beat=beat_state,
        )

    def server_now(self) -> float:
        """The Redis server's time (one ``TIME`` round trip): operators' tools write in the server's clock."""
        return server_time(self.client.time())

    def queue_read(self, pipe: Any) -> None:
        """Queue the four commands of a reading on ``pipe`` (for callers that batch it with other reads)."""
        pipe.type(self.start_key)
        pipe.get(self.start_key)
        pipe.pttl(self.start_key)
        pipe.get(self.last_seen_key)

    def reading(self, replies: list[Any], now: float) -> ClockReading:
        """The reading from the four replies of ``queue_read`` (``raise_on_error=False``)."""
        kind, raw, pttl, seen = replies
        for result in (kind, pttl, seen):
            if isinstance(result, Exception):
                raise result
        kind = kind.decode() if isinstance(kind, bytes) else kind
        wrong_type = kind not in ("string", "none")
        if isinstance(raw, Exception):
            if not _is_wrong_type(raw):
                raise raw
            raw = None
        exists = kind != "none"
        start = None if wrong_type else parse_start(raw)
        implausible = start is not None and start < now - self.max_panic_age_s
        return ClockReading(
            now=now,
            exists=exists,
            raw=raw if not wrong_type else f"<{kind}>",
            start=None if implausible else start,
            wrong_type=wrong_type,
            expiry_left_s=pttl / 1000.0 if pttl is not None and pttl >= 0 else None,
            has_expiry=exists and pttl is not None and pttl >= 0,
            last_observed_at=parse_start(seen),
            implausible=implausible,
        )

    def read(self, now: float) -> ClockReading:
        """Snapshot for the console: value, parse, expiry and last observation in one round trip."""
        pipe = self.client.pipeline(transaction=True)
        self.queue_read(pipe)
        return self.reading(pipe.execute(raise_on_error=False), now)

    def read_now(self) -> ClockReading:
        """``read`` at the server's time (TIME in the same MULTI, one round trip): what operator tools show, as
        workers measure in it (a console host's own clock may be off by hours)."""
        pipe = self.client.pipeline(transaction=True)
        queue_time(pipe, self.start_key)
        self.queue_read(pipe)
        replies = pipe.execute(raise_on_error=False)
        if isinstance(replies[0], Exception):
            raise replies[0]
        return self.reading(replies[1:], server_time(replies[0]))

    def end(self) -> bool:
        """Delete the clock (the panic is over); True when there was one. Bounded like the round trip."""
        if self._bounded:
            command = wire.pack(b"DEL", *self._keys[:2])
            return bool(self._wire_call(command, wire.timeout_s(self.client)))
        return bool(self.client.delete(self.start_key, self.last_seen_key))

    def start_drill(
        self,
        now: float,
        *,
        backdate_s: float = 0.0,
        hold_s: int | None = None,
        overwrite: bool = False,
    ) -> bool:
        """Start a panic ``backdate_s`` in the past that expires after ``hold_s`` without observations.

        Refuses (returns False, writing nothing) when a clock is already running unless ``overwrite``,
        and when another writer changes the clock while this one decides.
        """
        if backdate_s < 0 or not math.isfinite(backdate_s):
            raise ValueError(f"backdate_s must be a finite number >= 0, got {backdate_s!r}")
        if backdate_s > self.max_panic_age_s:  # workers would replace it at once (SPEC section 3 v3)
            raise ValueError(f"backdate_s {backdate_s:g} is more than the maximum panic age "
                             f"({self.max_panic_age_s / 3600:g} h, BREAKER_MAX_PANIC_AGE_H): workers would replace it")
        hold = self.panic_key_ttl_s if hold_s is None else int(hold_s)
        if hold < 1:
            raise ValueError(f"hold_s must be >= 1 second, got {hold_s!r}")
        for _ in range(3):  # a worker refreshing the expiry meanwhile is not a reason to give up
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.start_key)
                    if not overwrite and pipe.exists(self.start_key):
                        return False
                    pipe.multi()
                    pipe.set(self.start_key, format_ts(now - backdate_s), ex=hold)  # plain SET: replaces any type
                    pipe.set(self.last_seen_key, format_ts(now), ex=hold)
                    pipe.execute()
                    return True
                except WatchError:
                    continue
        return False



def observation_of(reply: refresh.Reply) -> Observation:
    """The observation a round trip made; ``ValueError`` if the server handed back no usable start."""
    start = parse_start(reply.start_raw)
    if start is None:
        raise ValueError(f"the round trip returned no usable start: {_describe(reply.start_raw)!r}")
    return Observation(start, initialized=reply.initialized, replaced_raw=reply.replaced)


def server_time(reply: Any) -> float:
    """Seconds since the epoch from a ``TIME`` reply (redis-py gives ``(seconds, microseconds)``)."""
    seconds, micros = reply
    return int(seconds) + int(micros) / 1e6


def _is_wrong_type(exc: Exception) -> bool:
    return isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE")


def _describe(raw: Any) -> Any:
    if isinstance(raw, Exception):
        return "<not a string>"
    return raw[:64] if isinstance(raw, (bytes, str)) else raw
