"""The seed's protocol, as the seed describes it: the baseline every figure is compared with.

Per panic call: SET NX EX, then GET, then EXPIRE, three separate round trips; then the
tier decision (the policy's full answer, metadata included) and one INFO log line.
Per calm call: DEL. Same client library, same server, same logging set-up as ours, so
that the only differences measured are the protocol and the hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from breaker.clock import format_ts, parse_start
from breaker.policy import AdaptivePanicQuota, PanicMode

SEED_KEY_TTL_S = 86400


class SeedBreaker:
    """``get_ttl`` with the seed's Redis protocol and logging; fails safe like the seed did."""

    def __init__(self, client: Any, *, key_prefix: str = "brain:", clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.key = f"{key_prefix}panic_start_ts"
        self.clock = clock
        self.quota = AdaptivePanicQuota()
        self._log = structlog.get_logger("seed")

    def get_ttl(self, base_ttl: int, vix_status: str = "normal", match_context: Any = None) -> tuple[int, str]:
        status = vix_status.strip().lower()
        if status != "panic":
            self.client.delete(self.key)
            return base_ttl, PanicMode.NORMAL
        now = self.clock()
        try:
            self.client.set(self.key, format_ts(now), nx=True, ex=SEED_KEY_TTL_S)
            start = parse_start(self.client.get(self.key))
            self.client.expire(self.key, SEED_KEY_TTL_S)
        except Exception as exc:
            self._log.error("PANIC_WITHOUT_RELIABLE_TIMESTAMP", redis_status="configured_but_error", error=repr(exc))
            return 0, PanicMode.PANIC_FULL
        if start is None:
            return 0, PanicMode.PANIC_FULL
        duration_min = max(0.0, now - start) / 60.0
        ttl, mode, metadata = self.quota.calculate_ttl_strategy(
            base_ttl, duration_min, match_context, panic_active=True
        )
        self._log.info(
            "VIX_TTL_DECISION", ttl=ttl, mode=mode.value, tier=metadata["tier"],
            match_importance=metadata["match_importance"], panic_duration_min=metadata["panic_duration_min"],
            reason=metadata["reason"],
        )
        return ttl, mode
