"""One simulated worker process: a market feed and several worker identities, ticking until told to stop.

Each identity is a ``VIXCircuitBreaker`` of its own (its own worker id and heartbeat) behind its own
cache (:class:`SimulatedBackend`); they share the process's Redis client, as threads of one backend
process would. Each tick the feed moves every market's odds and reads the signal, then every identity
reads every market once. The process sleeps between ticks: a demo fleet must leave the CPU to the
console it is shown in.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import time
from typing import Any

from ...circuit import VIXCircuitBreaker
from ...client import redis_client
from ...importance import MatchImportance
from ...logs import configure_logging
from ...signal import VIXCalculator
from ..audit import AuditTrail, state_change_listener
from .backend import SimulatedBackend, flush_counts
from .lifetime import die_with_parent, exit_on_sigterm, parent_alive
from .load import READY_FIELD, pending_key
from .marker import DemoMarker, read_marker
from .market import MarketFeed, make_markets
from .seed_model import SeedModel

FLUSH_EVERY_S = 1.0
CLIENT_TIMEOUT_MS = 100  # a busy 2-core demo machine: 50 ms turns load into fail-safe answers; 100 ms is the most
# a worker may use without REDIS_CLIENT_MAY_STALL


def shares_of(marker: DemoMarker | None) -> tuple[dict[MatchImportance, float], float]:
    """The panic shares to play and the scenario clock (seconds), from the conductor's marker."""
    if marker is None or marker.state not in ("playing", "paused"):
        return {}, 0.0 if marker is None else marker.minute * 60.0
    return {MatchImportance(k): v for k, v in marker.shares.items()}, marker.minute * 60.0


class SimulatedWorkerProcess:
    """The feed and the identities of one process; ``tick`` is everything one tick does."""

    def __init__(self, client: Any, prefix: str, *, index: int, identities: int, per_class: int,
                 tick_s: float, window_s: float, seed: int | None = None) -> None:
        rng = random.Random(seed if seed is not None else index)
        self.client = client
        self.prefix = prefix
        calculator = VIXCalculator(window_s=window_s)
        rest_ticks = int(window_s / tick_s) + 4
        self.feed = MarketFeed(make_markets(per_class, rng, tag=f"p{index}"), calculator, rng, rest_ticks)
        self.counts_ready = False
        seed_model = SeedModel()
        # The first identity of each process records its state changes in the audit trail, as a worker with
        # ``state_change_listener`` does: History shows the demo's tiers while it plays (one writer per process,
        # not 64, keeps the bounded stream for the story rather than for duplicates).
        trail = AuditTrail(client, key_prefix=prefix)
        self.backends = [
            SimulatedBackend(VIXCircuitBreaker(client, key_prefix=prefix,
                                               on_state_change=state_change_listener(trail) if i == 0 else None),
                             seed_model, random.Random(rng.random()))
            for i in range(identities)
        ]

    def tick(self, marker: DemoMarker | None, now: float) -> None:
        shares, scenario_now = shares_of(marker)
        self.feed.tick(shares)
        markets = self.feed.markets
        for backend in self.backends:
            for market in markets:
                backend.read(market, now, scenario_now)

    def take_counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for backend in self.backends:
            for name, value in backend.take_counts().items():
                total[name] = total.get(name, 0) + value
        return total


def run_worker(url: str, prefix: str, *, index: int, identities: int, per_class: int, tick_s: float,
               window_s: float, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    client = redis_client(url, timeout_ms=CLIENT_TIMEOUT_MS)
    process = SimulatedWorkerProcess(client, prefix, index=index, identities=identities, per_class=per_class,
                                     tick_s=tick_s, window_s=window_s)
    pending = pending_key(prefix)
    next_flush = time.monotonic() + FLUSH_EVERY_S
    next_tick = time.monotonic()
    process.counts_ready = True
    try:
        while parent_alive(parent_pid):
            try:
                marker = read_marker(client, prefix)
            except Exception:  # Redis away: play calm, the breakers fail safe on their own
                marker = None
            process.tick(marker, time.time())
            if time.monotonic() >= next_flush:
                next_flush += FLUSH_EVERY_S
                counts = process.take_counts()
                if process.counts_ready:  # the first flush tells the conductor this process is up
                    counts[READY_FIELD], process.counts_ready = 1, False
                with contextlib.suppress(Exception):  # a lost second of load counts; the next flush carries on
                    flush_counts(client, pending, counts)
            next_tick += tick_s
            time.sleep(max(0.0, next_tick - time.monotonic()))
            next_tick = max(next_tick, time.monotonic() - tick_s)  # after a stall, do not race to catch up
    finally:
        client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one simulated worker process of the demo fleet")
    parser.add_argument("--url", default=os.environ.get("REDIS_URL"), help="default: REDIS_URL (kept out of ps)")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--identities", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=12)
    parser.add_argument("--tick", type=float, default=0.5)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    configure_logging(args.log_level, "console")
    with contextlib.suppress(KeyboardInterrupt):
        run_worker(args.url, args.prefix, index=args.index, identities=args.identities, per_class=args.per_class,
                   tick_s=args.tick, window_s=args.window, parent_pid=args.parent_pid)


if __name__ == "__main__":
    main()
