"""The shared panic clock: every Redis command about the panic start lives here.

Protocol (SPEC section 3): ``{prefix}panic_start_ts`` holds the panic start as a
decimal Unix timestamp. A panic observation is one MULTI/EXEC round trip: SET NX
(first writer wins), GET, EXPIRE (the expiry is both the dead man's switch and
the calm period), plus ``{prefix}panic_last_seen_ts`` so that operators can see
when the clock was last fed. Errors from the client propagate: deciding what a
failure means is the breaker's job, not the clock's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from redis.exceptions import ResponseError, WatchError

from . import transaction

DEFAULT_KEY_PREFIX = "brain:"
DEFAULT_PANIC_KEY_TTL_S = 900
SEED_KEY_TTL_S = 86400
START_KEY_NAME = "panic_start_ts"
LAST_SEEN_KEY_NAME = "panic_last_seen_ts"


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


class PanicClock:
    """The Redis protocol of the shared panic clock for one key prefix."""

    def __init__(
        self, client: Any, *, key_prefix: str = DEFAULT_KEY_PREFIX, panic_key_ttl_s: int = DEFAULT_PANIC_KEY_TTL_S
    ) -> None:
        check_key_ttl(panic_key_ttl_s)
        self.client = client
        self.key_prefix = key_prefix
        self.panic_key_ttl_s = panic_key_ttl_s
        self.start_key = f"{key_prefix}{START_KEY_NAME}"
        self.last_seen_key = f"{key_prefix}{LAST_SEEN_KEY_NAME}"
        self._packed_keys: tuple[bytes, bytes, bytes] | None = None
        if transaction.can_pack_by_hand(client):
            encode = client.connection_pool.get_encoder().encode
            self._packed_keys = (encode(self.start_key), encode(self.last_seen_key), b"%d" % panic_key_ttl_s)

    def observe(self, now: float) -> Observation:
        """Record a panic observation in one atomic round trip and return the agreed start."""
        stamp = format_ts(now)
        if self._packed_keys is not None:
            created, raw, _, _ = self._observe_packed(stamp.encode())
        else:
            ttl = self.panic_key_ttl_s
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self.start_key, stamp, nx=True, ex=ttl)
            pipe.get(self.start_key)
            pipe.expire(self.start_key, ttl)
            pipe.set(self.last_seen_key, stamp, ex=ttl)
            created, raw, _, _ = pipe.execute(raise_on_error=False)
        for result in (created, raw):
            if isinstance(result, Exception) and not _is_wrong_type(result):
                raise result
        start = None if isinstance(raw, Exception) else parse_start(raw)
        if start is not None:
            return Observation(start, initialized=bool(created) and not isinstance(created, Exception))
        return self._replace_unusable(now, raw)

    def _observe_packed(self, stamp: bytes) -> list[Any]:
        """The same four commands as the pipeline above, in one hand-packed MULTI/EXEC."""
        key, last_seen_key, ttl = self._packed_keys
        commands = b"".join((
            transaction.pack(b"SET", key, stamp, b"NX", b"EX", ttl),
            transaction.pack(b"GET", key),
            transaction.pack(b"EXPIRE", key, ttl),
            transaction.pack(b"SET", last_seen_key, stamp, b"EX", ttl),
        ))
        return transaction.execute_transaction(self.client, commands, queued=4)

    def _replace_unusable(self, now: float, seen_raw: Any) -> Observation:
        """Compare-and-set an unusable value to ``now``; if another worker won, take theirs."""
        for _ in range(5):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.start_key)
                    raw = pipe.get(self.start_key) if pipe.type(self.start_key) in (b"string", "string") else None
                    current = parse_start(raw)
                    if current is not None:
                        return Observation(current, initialized=False)
                    pipe.multi()
                    pipe.delete(self.start_key)  # a hash or list cannot be SET over inside MULTI safely
                    pipe.set(self.start_key, format_ts(now), ex=self.panic_key_ttl_s)
                    pipe.execute()
                    return Observation(now, initialized=True, replaced_raw=_describe(seen_raw))
                except WatchError:
                    continue
        raise RuntimeError(f"{self.start_key}: could not replace an unusable value after 5 attempts")

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
        return ClockReading(
            now=now,
            exists=exists,
            raw=raw if not wrong_type else f"<{kind}>",
            start=None if wrong_type else parse_start(raw),
            wrong_type=wrong_type,
            expiry_left_s=pttl / 1000.0 if pttl is not None and pttl >= 0 else None,
            has_expiry=exists and pttl is not None and pttl >= 0,
            last_observed_at=parse_start(seen),
        )

    def read(self, now: float) -> ClockReading:
        """Snapshot for the console: value, parse, expiry and last observation in one round trip."""
        pipe = self.client.pipeline(transaction=True)
        self.queue_read(pipe)
        return self.reading(pipe.execute(raise_on_error=False), now)

    def end(self) -> bool:
        """Delete the clock (the panic is over); True when there was one."""
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
