"""Worker heartbeats (SPEC section 7): one field per worker in the hash ``{prefix}workers``.

A worker writes its beat inside its one round trip per ``refresh_interval_s``; the value is JSON with the
format version ``v`` (1), who it is, when it was last seen (server time), what it answered since its last
beat, and what it is honouring. Readers judge a beat's state from ``seen``: a worker unseen for
``STALE_AFTER_INTERVALS`` intervals is stale, one unseen for ``GONE_AFTER_S`` (or 4 intervals, when that is
longer) is gone (and pruned).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from typing import Any

WORKERS_KEY_NAME = "workers"
AGG_KEY_NAME = "fleet_agg"  # per-bucket aggregates of the beats: breaker.refresh, breaker.ops.fleet_summary
BEAT_VERSION = 1
STALE_AFTER_INTERVALS = 3
GONE_AFTER_S = 60
MAX_BEAT_BYTES = 8192
#: Larger than any count a worker reports in one interval, small enough that a beat's sum of counts (a few
#: hundred entries fit in MAX_BEAT_BYTES) stays exact in a float and fits a 64-bit integer column.
MAX_COUNT = 2**40
MAX_PID = 2**31
STATES = ("panic", "calm", "fail_safe", "stale", "gone")
CALM_MODES = ("NORMAL",)


class InvalidBeat(ValueError):
    """A field of the workers hash that is not a heartbeat this version can read."""


def new_worker_id() -> str:
    """``host:pid:<4 hex>``: the random part tells apart a restarted worker that reused a pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


@dataclass(frozen=True)
class WorkerBeat:
    """One worker's last heartbeat and the state a reader derives from it at ``now``."""

    worker_id: str
    host: str
    pid: int
    started: float
    seen: float
    interval_s: float
    calls: dict[str, int] = dataclasses.field(default_factory=dict)
    fail_safe: int = 0
    tiers: dict[str, int] = dataclasses.field(default_factory=dict)
    override: str | None = None
    error: str | None = None
    version: str = ""
    state: str = "calm"
    epoch: int | None = None  # the panic epoch the worker answered from (None: none known, or an older worker)
    skew_s: float | None = None  # the worker's clock minus the server's at the beat (None: not reported)

    @property
    def answers(self) -> int:
        return sum(self.calls.values())

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.seen)


def gone_after_s(interval_s: float) -> float:
    """60 s, or longer for a worker whose interval is so long that it would look gone between two beats."""
    return max(float(GONE_AFTER_S), (STALE_AFTER_INTERVALS + 1) * max(interval_s, 0.0))


def beat_ttl_s(interval_s: float) -> int:
    """The per-field expiry of a beat: it disappears when a reader would call it gone."""
    return math.ceil(gone_after_s(interval_s))


def beat_state(seen: float, interval_s: float, calls: dict[str, int], fail_safe: int, now: float) -> str:
    """gone / stale from the age of the beat; otherwise what the worker answered in its last interval."""
    age = now - seen
    if age > gone_after_s(interval_s):
        return "gone"
    if age > STALE_AFTER_INTERVALS * max(interval_s, 0.0) and age > 1.0:
        return "stale"  # a beat is at most about one interval old; 1 s of slack for interval 0
    return answer_state(calls, fail_safe)


def answer_state(calls: dict[str, int], fail_safe: int) -> str:
    """What a worker's answers of one interval say: fail_safe, panic or calm (the aggregates' states)."""
    if fail_safe > 0:
        return "fail_safe"
    if any(count > 0 and mode not in CALM_MODES for mode, count in calls.items()):
        return "panic"
    return "calm"


def beat_json(
    *,
    host: str,
    pid: int,
    started: float | None,
    interval_s: float,
    calls: dict[str, int],
    fail_safe: int,
    tiers: dict[str, int],
    override: str | None,
    error: str | None,
    version: str,
    overrides_seen: int = 0,
    seen: float | None = None,
    epoch: int | None = None,
) -> str:
    """The stored value. Without ``seen`` the text ends in ``"seen":`` for the server to complete with its
    own time (the round trip's script appends the number and the closing brace)."""
    body = {
        "v": BEAT_VERSION,
        "host": host,
        "pid": pid,
        "started": started,
        "interval": interval_s,
        "calls": calls,
        "fail_safe": fail_safe,
        "tiers": tiers,
        "override": override,
        "error": error,
        "version": version,
        "overrides_seen": overrides_seen,
        "epoch": epoch,
    }
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
    if seen is None:
        return text[:-1] + ',"seen":'
    return text[:-1] + f',"seen":{float(seen)!r}}}'


def _number(data: dict[str, Any], name: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidBeat(f"{name} is not a finite number")
    return float(value)


def _counts(value: Any, name: str) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidBeat(f"{name} is not an object")
    out: dict[str, int] = {}
    for key, count in value.items():
        out[str(key)] = _count(count, f"{name}[{key!r}]")
    return out


def _count(value: Any, name: str) -> int:
    """A count as a worker reports it: a whole number from 0 to ``MAX_COUNT`` (anything else was not written
    by a worker, and would overflow the readers' sums and tables)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= MAX_COUNT:
        raise InvalidBeat(f"{name} is not a count from 0 to {MAX_COUNT}")
    return int(value)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63 else None


def _optional_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)[:500]


def parse_beat(field: Any, raw: Any, now: float) -> WorkerBeat:
    """The beat stored under ``field``, with its state at ``now`` (server time); ``InvalidBeat`` else."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_BEAT_BYTES:
            raise InvalidBeat(f"longer than {MAX_BEAT_BYTES} bytes")
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        raise InvalidBeat(f"not text: {type(raw).__name__}")
    if len(raw) > MAX_BEAT_BYTES:  # a client with decode_responses hands over str
        raise InvalidBeat(f"longer than {MAX_BEAT_BYTES} characters")
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidBeat("not JSON") from None
    except RecursionError:  # a few KiB of brackets: json gives up with RecursionError, not ValueError
        raise InvalidBeat("JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidBeat("not a JSON object")
    if data.get("v") != BEAT_VERSION:
        raise InvalidBeat(f"format version {data.get('v')!r}, expected {BEAT_VERSION}")
    seen = _number(data, "seen")
    interval = _number(data, "interval") if "interval" in data else 1.0
    calls = _counts(data.get("calls"), "calls")
    fail_safe = _count(data["fail_safe"], "fail_safe") if data.get("fail_safe") is not None else 0
    pid = data.get("pid")
    return WorkerBeat(
        worker_id=_text(field),
        host=str(data.get("host", "")),
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and 0 <= pid < MAX_PID else -1,
        started=_number(data, "started") if data.get("started") is not None else seen,
        seen=seen,
        interval_s=interval,
        calls=calls,
        fail_safe=fail_safe,
        tiers=_counts(data.get("tiers"), "tiers"),
        override=_optional_text(data.get("override")),
        error=_optional_text(data.get("error")),
        version=str(data.get("version", "")),
        state=beat_state(seen, interval, calls, fail_safe, now),
        epoch=_optional_int(data.get("epoch")),
        skew_s=_optional_float(data.get("skew_s")),
    )


def _texts(counts: dict[Any, int]) -> dict[str, int]:
    return {getattr(key, "value", key): n for key, n in counts.items()}


class _Tally:
    """One thread's answers since it started, written only by that thread: counting takes no lock."""

    __slots__ = ("calls", "fail_safe", "taken_calls", "taken_fail_safe", "taken_tiers", "thread", "tiers")

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.calls: dict[Any, int] = {}  # running totals: only ever incremented, by the owner thread
        self.fail_safe = 0
        self.tiers: dict[Any, tuple[int, int]] = {}  # stakes -> (order of the answer, tier)
        self.taken_calls: dict[Any, int] = {}  # what the beats have already reported (``take``'s side)
        self.taken_fail_safe = 0
        self.taken_tiers: dict[Any, tuple[int, int]] = {}


class AnswerCounts:
    """What a worker answered since its last beat: calls by mode, fail-safe answers, last tier per class.

    Thread-safe and exact without a lock per answer: each thread counts into its own running totals, which
    only it writes; ``take`` copies every thread's totals (one C-level dict copy, atomic under the GIL) and
    reports what grew since the copy it took before, so an answer counted while a beat is taken is reported
    by this beat or the next, never lost or twice. ``give_back`` returns counts a beat could not write (so
    the next beat still reports them).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # registration, take and give_back: never an answer
        self._local = threading.local()
        self._tallies: list[_Tally] = []
        self._order = itertools.count(1)  # next() is atomic: which answer of a class came last, across threads
        self._returned: tuple[dict[Any, int], int, dict[Any, tuple[int, int]]] = ({}, 0, {})

    def forget(self) -> None:
        """Start from zero, in place (a forked child: the parent's threads, tallies and lock are the parent's).
        In place, so that whatever wraps ``count`` (the Prometheus metrics) keeps counting."""
        AnswerCounts.__init__(self)

    def count(self, mode: Any, *, fail_safe: bool = False, stakes: Any = None, tier: int = 0) -> None:
        """One answer; ``mode`` and ``stakes`` may be str enums (turned into their text only at ``take``)."""
        try:
            tally = self._local.tally
        except AttributeError:
            tally = self._register()
        calls = tally.calls
        calls[mode] = calls.get(mode, 0) + 1
        if fail_safe:
            tally.fail_safe += 1
        if stakes is not None:
            tally.tiers[stakes] = (next(self._order), tier)

    def _register(self) -> _Tally:
        tally = self._local.tally = _Tally(threading.current_thread())
        with self._lock:
            self._tallies.append(tally)
        return tally

    def take(self) -> tuple[dict[str, int], int, dict[str, int]]:
        with self._lock:
            calls, fail_safe, last = self._returned
            calls, last = dict(calls), dict(last)
            self._returned = ({}, 0, {})
            alive = []
            for tally in self._tallies:
                ended = not tally.thread.is_alive()  # before the copies: an ended thread adds nothing after
                now_calls, now_fail_safe, now_tiers = tally.calls.copy(), tally.fail_safe, tally.tiers.copy()
                for mode, n in now_calls.items():
                    grown = n - tally.taken_calls.get(mode, 0)
                    if grown:
                        calls[mode] = calls.get(mode, 0) + grown
                fail_safe += now_fail_safe - tally.taken_fail_safe
                for stakes, answer in now_tiers.items():
                    if answer != tally.taken_tiers.get(stakes) and answer > last.get(stakes, (0, 0)):
                        last[stakes] = answer
                tally.taken_calls, tally.taken_fail_safe, tally.taken_tiers = now_calls, now_fail_safe, now_tiers
                if not ended:
                    alive.append(tally)
            self._tallies = alive
        return _texts(calls), fail_safe, _texts({stakes: tier for stakes, (_, tier) in last.items()})

    def give_back(self, calls: dict[str, int], fail_safe: int, tiers: dict[str, int]) -> None:
        with self._lock:
            returned_calls, returned_fail_safe, returned_tiers = self._returned
            for mode, n in calls.items():
                returned_calls[mode] = returned_calls.get(mode, 0) + n
            for stakes, tier in tiers.items():
                returned_tiers.setdefault(stakes, (0, tier))  # older than any answer counted since
            self._returned = (returned_calls, returned_fail_safe + fail_safe, returned_tiers)
