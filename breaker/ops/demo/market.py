"""Synthetic odds for many markets, and the signal ``VIXCalculator`` reads from them.

A z-score over a sliding window sees a *change* of volatility, not volatility itself: odds that keep
bouncing read calm again once the window has filled with the bounce. So a market "panics" here the way
the calculator can see it: a shock (a jump of ``SHOCK`` of its odds, towards its home odds) after a quiet
spell; the calculator says panic until the new level fills a fifth of its window, then the market rests a
window long before it can shock again; shocks go towards home, so the odds stay within a shock of it.
To hold a share of a stakes class in panic, ``MarketFeed`` shocks rested markets whenever fewer than that
share read panic (or were shocked a moment ago). That share can reach
about one market in six: a scenario's "panic in some markets". Markets start with staggered rests, so
their history is long enough and their shocks are spread out.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from ...importance import MatchImportance
from ...signal import VIXCalculator

QUIET_NOISE = 0.0005  # fraction of the odds, per tick
# Base TTLs from in-play (odds move every few seconds) to pre-match: a backend caches them differently. The
# short ones also keep every worker calling get_ttl, so its heartbeat (which rides on its calls) never stops.
BASE_TTLS_S = (5, 10, 30, 60)
SHOCK = 0.08

CONTEXTS = {
    MatchImportance.HIGH_STAKES: ({"league": "Champions League", "stage": "Quarter-final"},
                                  {"league": "Premier League", "competition": "North London Derby"}),
    MatchImportance.MEDIUM_STAKES: ({"league": "Ligue 1"}, {"league": "Serie A"}, {"league": "Bundesliga"}),
    MatchImportance.LOW_STAKES: ({"league": "Ligue 2"}, {"league": "Club friendly"}),
}


@dataclass
class SyntheticMarket:
    key: str
    stakes: MatchImportance
    context: dict[str, str]
    home: float
    base_ttl: int = 60
    level: float = 0.0  # where the odds sit between shocks; each tick adds a little noise around it
    odds: float = 0.0
    status: str = "normal"
    rest_left: int = 0  # ticks before it may shock again

    def __post_init__(self) -> None:
        self.level = self.level or self.home
        self.odds = self.odds or self.level


def make_markets(per_class: int, rng: random.Random, *, tag: str = "m") -> list[SyntheticMarket]:
    """``per_class`` markets of each stakes class, with the contexts a feed would send and a base TTL each."""
    return [
        SyntheticMarket(f"{tag}:{stakes.value}:{i}", stakes, dict(contexts[i % len(contexts)]),
                        home=round(rng.uniform(1.4, 4.5), 2), base_ttl=BASE_TTLS_S[i % len(BASE_TTLS_S)])
        for stakes, contexts in CONTEXTS.items()
        for i in range(per_class)
    ]


@dataclass
class MarketFeed:
    """The odds of a worker's markets, one snapshot per tick each, and their signal."""

    markets: list[SyntheticMarket]
    calculator: VIXCalculator
    rng: random.Random
    rest_ticks: int
    by_class: dict[MatchImportance, list[SyntheticMarket]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_class = {stakes: [m for m in self.markets if m.stakes is stakes] for stakes in MatchImportance}
        # A calm history a window long, so that the first shocks stand out as much as the later ones.
        now = self.calculator.clock()
        step_s = self.calculator.window_s / self.rest_ticks
        for market in self.markets:
            market.rest_left = self.rng.randint(1, max(1, self.rest_ticks // 4))  # spread the first shocks
            for i in range(self.rest_ticks, 0, -1):
                self.calculator.add_odds_snapshot(market.key, self._noisy(market), now - i * step_s)

    def _noisy(self, market: SyntheticMarket) -> float:
        return max(1.01, market.level * (1 + self.rng.gauss(0, QUIET_NOISE)))

    def tick(self, panic_share: Mapping[MatchImportance, float]) -> None:
        """Move every market's odds one tick and read its signal; shock markets to reach ``panic_share``."""
        for stakes, markets in self.by_class.items():
            wanted = round(panic_share.get(stakes, 0.0) * len(markets))
            deficit = wanted - sum(m.status == "panic" or m.rest_left > self.rest_ticks - 2 for m in markets)
            if deficit > 0:
                rested = [m for m in markets if m.rest_left <= 0 and m.status != "panic"]
                for market in self.rng.sample(rested, min(deficit, len(rested))):
                    market.level *= 1 + (SHOCK if market.level < market.home else -SHOCK)
                    market.rest_left = self.rest_ticks
                    market.status = "shocked"
        for market in self.markets:
            if market.status != "shocked":
                market.rest_left -= 1
            market.odds = self._noisy(market)
            market.status = self.calculator.detect_panic_mode(market.key, market.odds).volatility_status
            self.calculator.add_odds_snapshot(market.key, market.odds)
