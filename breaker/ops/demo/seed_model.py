"""What the seed's protocol would have answered, as a pure model beside the real breaker.

The seed deleted the shared key on every calm (or warning) answer and started it again on the next panic
answer (``bench/seed_protocol.py`` runs that protocol for real against Redis). Here the "key" is one start
per simulated worker process, reset by that process's calm answers: a real seed fleet's key was also reset
by every other process's calm answers, so this model, if anything, lets the seed's tiers advance more
than they did.
"""

from __future__ import annotations

from typing import Any

from ...policy import AdaptivePanicQuota, PanicMode


class SeedModel:
    """``get_ttl`` as the seed answered it, on an injected scenario clock, without Redis."""

    def __init__(self, quota: AdaptivePanicQuota | None = None) -> None:
        self.quota = quota or AdaptivePanicQuota()
        self.start: float | None = None

    def get_ttl(self, base_ttl: int, vix_status: str, match_context: Any, now: float) -> tuple[int, PanicMode]:
        if vix_status != "panic":
            self.start = None  # the seed's DEL
            return base_ttl, PanicMode.NORMAL
        if self.start is None:
            self.start = now  # the seed's SET NX
        ttl, mode, _ = self.quota.calculate_ttl_strategy(
            base_ttl, max(0.0, now - self.start) / 60.0, match_context, panic_active=True
        )
        return ttl, mode
