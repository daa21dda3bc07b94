"""Log-on-change bookkeeping: INFO when a stakes class changes mode or tier (or a new panic starts), DEBUG
otherwise, and the ``on_state_change`` listener called only on a change."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .importance import MatchImportance
from .policy import PanicMode

StateListener = Callable[[dict[str, Any]], None]


class DecisionLog:
    """The last logged (mode, tier) per stakes class, for one worker."""

    def __init__(self, log: Callable[[], Any], on_state_change: StateListener | None) -> None:
        self._log = log
        self.on_state_change = on_state_change
        self._lock = threading.Lock()
        #: read by the breaker's steady path: a state equal to ``last`` with ``debug_on`` False logs nothing
        self.last: dict[MatchImportance, tuple[PanicMode, int]] = {}
        self.debug_on: bool | None = None  # asked of the logger once per round trip, not once per call

    def new_episode(self) -> None:
        """A new panic (or the end of one): the next answers are logged from their first tier, even tier 1."""
        with self._lock:
            self.last.clear()

    def recheck_level(self) -> None:
        """Logging may have been reconfigured: ask the logger again at the next decision."""
        self.debug_on = None

    def _debug_enabled(self) -> bool:
        """Whether to build DEBUG lines at all; True when the logger cannot say (it then filters them itself)."""
        try:
            return bool(self._log().is_enabled_for(logging.DEBUG))
        except Exception:
            return True

    def note(self, importance: MatchImportance, mode: PanicMode, tier: int, ttl: int, start: float | None,
             *, reliable: bool, epoch: int | None = None) -> None:
        """Log one panic answer: INFO and the listener on a change, DEBUG (if enabled) otherwise.

        ``reliable`` False (an outage, a fail-safe answer of a configured breaker) skips the listener: one that
        writes to the same Redis would wait on it."""
        state = (mode, tier)
        previous = self.last.get(importance)
        if previous == state:
            debug_on = self.debug_on
            if debug_on is None:
                debug_on = self.debug_on = self._debug_enabled()
            if debug_on:
                self._log().debug("VIX_TTL_DECISION", match_importance=importance.value, mode=mode.value, tier=tier,
                                  ttl=ttl)
            return
        with self._lock:
            previous = self.last.get(importance)
            if previous == state:
                return
            self.last[importance] = state
        event = {
            "match_importance": importance.value,
            "mode": mode.value,
            "tier": tier,
            "ttl": ttl,
            "previous_mode": previous[0].value if previous else None,
            "previous_tier": previous[1] if previous else None,
            "panic_start": start,  # which episode: a new start means the previous panic is over
            "epoch": epoch,  # the panic epoch answered from (issue 24): History shows a change of it
        }
        self._log().info("VIX_TTL_STATE_CHANGE", **event)
        if self.on_state_change is not None and reliable:
            try:
                self.on_state_change(event)
            except Exception as exc:  # a listener (the audit trail) must not change the answer
                self._log().warning("STATE_LISTENER_FAILED", error=repr(exc))
