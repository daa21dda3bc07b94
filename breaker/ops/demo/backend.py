"""A simulated backend worker: an in-process cache in front of the backend, one ``get_ttl`` per cache write.

A read of a market finds its cached odds or misses; a miss is a backend request, and the fresh odds go
back into the cache with the TTL the breaker answers for the market's signal. A change of the market's
signal drops its entry (the feed's update invalidates it, as an odds backend does on a big move), so a
market that starts to panic is not served from a calm TTL written a minute before. The cache runs on real
time (TTLs are real seconds, whatever the scenario's speed): only the panic's duration is accelerated.
Beside the real answers, a shadow cache holds what the seed's protocol would have answered, so both
backend loads come from the same reads of the same signal.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from ...circuit import VIXCircuitBreaker
from .load import miss_field
from .market import SyntheticMarket
from .seed_model import SeedModel


class SimulatedBackend:
    """One worker identity: its breaker, its cache, the seed's shadow cache, and what it counted."""

    def __init__(self, breaker: VIXCircuitBreaker, seed: SeedModel, rng: random.Random | None = None) -> None:
        self.breaker = breaker
        self.seed = seed
        self.rng = rng or random.Random(0)
        self._expires: dict[str, tuple[float, str]] = {}  # market -> (expires at, signal when written)
        self._seed_expires: dict[str, tuple[float, str]] = {}
        self.counts: Counter[str] = Counter()

    def read(self, market: SyntheticMarket, now: float, scenario_now: float) -> None:
        """One read of ``market`` at real time ``now``; misses count as backend requests."""
        key, status = market.key, market.status
        entry = self._expires.get(key)
        if entry is None or entry[0] <= now or entry[1] != status:
            ttl, _ = self.breaker.get_ttl(market.base_ttl, status, market.context)
            self._expires[key] = (now + ttl * self._age(entry), status)
            self.counts[miss_field("ours", market.stakes.value)] += 1
            self.counts["answers"] += 1
        entry = self._seed_expires.get(key)
        if entry is None or entry[0] <= now or entry[1] != status:
            ttl, _ = self.seed.get_ttl(market.base_ttl, status, market.context, scenario_now)
            self._seed_expires[key] = (now + ttl * self._age(entry), status)
            self.counts[miss_field("seed", market.stakes.value)] += 1

    def _age(self, entry: tuple[float, str] | None) -> float:
        """A first entry is taken as written at a random moment of its TTL, as in a backend that has run for a
        while: otherwise every market of a fresh process would expire in the same second, in lockstep."""
        return self.rng.random() if entry is None else 1.0

    def take_counts(self) -> dict[str, int]:
        counts, self.counts = dict(self.counts), Counter()
        return counts


def flush_counts(client: Any, pending_key: str, counts: dict[str, int]) -> None:
    """Add a process's counts to the pending hash: one pipeline of HINCRBYs."""
    if not counts:
        return
    pipe = client.pipeline(transaction=False)
    for name, value in counts.items():
        pipe.hincrby(pending_key, name, value)
    pipe.expire(pending_key, 60)
    pipe.execute()
