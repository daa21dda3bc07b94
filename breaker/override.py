"""The operator override (SPEC section 7): a JSON value at ``{prefix}panic_override`` that pins workers.

``force_full`` makes every answer ``(0, PANIC_FULL)`` (a known data incident, a drill); ``force_calm`` makes
panic answers ``(base, NORMAL)`` without observing the clock (a signal stuck in panic). Every override has an
end. This module only parses and formats: anything that does not parse, names another mode or has no end is
an ``InvalidOverride``, never read as ``force_calm``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

OVERRIDE_KEY_NAME = "panic_override"
#: How far ahead of the worker's server time an override's ``since`` may be (a writer's clock, the worker's
#: estimate): beyond it the override is ignored, else the cap from ``since`` would start hours from now.
FUTURE_SINCE_SLACK_S = 60.0
DEFAULT_MAX_OVERRIDE_MIN = 60.0  # BREAKER_MAX_OVERRIDE_MIN: what a worker honours from an override's since
MAX_RAW_BYTES = 4096  # a well-formed override is a few hundred bytes; workers read at most this much


class OverrideMode(StrEnum):
    FORCE_FULL = "force_full"
    FORCE_CALM = "force_calm"


class InvalidOverride(ValueError):
    """The stored override cannot be honoured; the message says why."""


@dataclass(frozen=True)
class Override:
    """An operator's override, times in the Redis server's clock."""

    mode: OverrideMode
    who: str
    why: str
    since: float
    until: float

    def to_json(self) -> str:
        """The stored format, exactly ``{"mode","who","why","since","until"}``."""
        return json.dumps(
            {"mode": self.mode.value, "who": self.who, "why": self.why, "since": self.since, "until": self.until},
            ensure_ascii=False,
        )

    def left_s(self, now: float) -> float:
        """Seconds until it ends (0 once it has)."""
        return max(0.0, self.until - now)

    def active(self, now: float) -> bool:
        return now < self.until


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidOverride(f"{name} must be a finite number, got {value!r}"[:200])
    return float(value)


def future_since(override: Override, server_now: float) -> str | None:
    """Why ``override`` is not honoured yet, or None: a ``since`` more than ``FUTURE_SINCE_SLACK_S`` after server
    time (the tools write ``since`` = now; planned windows are the schedule's). Workers and every reading judge
    it here, so the views say what the workers answer."""
    if override.since <= server_now + FUTURE_SINCE_SLACK_S:
        return None
    return (f"starts in the future ({override.since - server_now:.0f} s after server time): the tools write "
            "since = now; planned windows are the schedule's")


def parse_override(raw: Any) -> Override:
    """The override stored in ``raw`` (bytes or str), or ``InvalidOverride`` naming what is wrong."""
    if raw is None:
        raise InvalidOverride("no override")
    if isinstance(raw, bytes):
        if len(raw) > MAX_RAW_BYTES:
            raise InvalidOverride(f"longer than {MAX_RAW_BYTES} bytes")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidOverride("not UTF-8 text") from None
    if not isinstance(raw, str):
        raise InvalidOverride(f"not text: {type(raw).__name__}")
    if len(raw) > MAX_RAW_BYTES:
        raise InvalidOverride(f"longer than {MAX_RAW_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidOverride("not JSON") from None
    except RecursionError:  # 4 KiB of brackets: json gives up with RecursionError, not ValueError
        raise InvalidOverride("JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidOverride("not a JSON object")
    try:
        mode = OverrideMode(data.get("mode"))
    except ValueError:
        raise InvalidOverride(f"unknown mode {data.get('mode')!r}"[:200]) from None
    if "until" not in data or data["until"] is None:
        raise InvalidOverride("no end (until)")
    until = _finite(data["until"], "until")
    since = _finite(data.get("since"), "since")
    if until <= since:
        raise InvalidOverride("ends before it starts")
    who, why = data.get("who", ""), data.get("why", "")
    if not isinstance(who, str) or not isinstance(why, str):
        raise InvalidOverride("who and why must be text")
    return Override(mode, who, why, since, until)


class HonouredOverride:
    """The override one worker honours: adopted from each round trip's read, kept through failed ones until
    its end. Logs each change once (``PANIC_OVERRIDE_SEEN``) and each unusable value once
    (``INVALID_PANIC_OVERRIDE``), through ``log()`` (the breaker's logger, looked up at each use).

    ``max_s`` is the worker's own cap (SPEC section 12): whatever wrote it, an override is honoured only up to
    ``since + max_s`` in server time (logged once as ``PANIC_OVERRIDE_CAPPED``)."""

    def __init__(self, log: Callable[[], Any], key: str, max_s: float = DEFAULT_MAX_OVERRIDE_MIN * 60) -> None:
        self._log = log
        self.key = key
        self.max_s = max_s
        self.current: Override | None = None
        self.changes = 0
        self._raw: Any = None
        #: server time from which a value refused for a future ``since`` is judged again (None: no such value)
        self._judge_again_at: float | None = None

    def mode_at(self, server_now: float) -> OverrideMode | None:
        """The mode in force at ``server_now`` (the worker's estimate of the server's time), or None."""
        current = self.current
        return current.mode if current is not None and server_now < current.until else None

    def adopt(self, raw: Any, stored_len: int, server_now: float) -> None:
        """Take the value a round trip read (``stored_len``: bytes stored, of which ``raw`` is the start)."""
        if raw == self._raw and (self.current is None or self.current.active(server_now)) \
                and (self._judge_again_at is None or server_now < self._judge_again_at):
            return
        self._raw = raw
        self._judge_again_at = None
        seen: Override | None = None
        if raw is not None:
            try:
                if stored_len > MAX_RAW_BYTES:
                    raise InvalidOverride(f"longer than {MAX_RAW_BYTES} bytes")
                seen = parse_override(raw)
                future = future_since(seen, server_now)
                if future:  # refused until its since comes (then every reading shows it in force): judged again then
                    self._judge_again_at = seen.since - FUTURE_SINCE_SLACK_S
                    raise InvalidOverride(future)
                capped = seen.until - seen.since > self.max_s
                if capped:
                    asked, seen = seen.until, replace(seen, until=seen.since + self.max_s)
                if not seen.active(server_now):
                    raise InvalidOverride("past this worker's BREAKER_MAX_OVERRIDE_MIN from its since" if capped
                                          else "expired")
                if capped:
                    self._log().warning("PANIC_OVERRIDE_CAPPED", key=self.key, until=asked,
                                        honoured_until=seen.until, max_min=self.max_s / 60)
            except InvalidOverride as exc:
                seen = None
                text = repr(raw)
                self._log().error("INVALID_PANIC_OVERRIDE", key=self.key, reason=str(exc),
                                  value=text if len(text) <= 80 else text[:77] + "...", answer="override ignored")
        if seen != self.current:
            self.current = seen
            self.changes += 1
            self._log().warning(
                "PANIC_OVERRIDE_SEEN", mode=seen.mode.value if seen else None, who=seen.who if seen else None,
                why=seen.why if seen else None, until=seen.until if seen else None,
                left_s=round(seen.left_s(server_now), 1) if seen else None,
            )
