"""Figures 1 and 2: one thread, decisions per second on the panic path and on the calm path."""

from __future__ import annotations

from itertools import cycle

from breaker import VIXCircuitBreaker

from .harness import BenchServer, Rounds, calls_per_second, server_commands
from .seed_protocol import SeedBreaker
from .table import Row, rate, times

CONTEXTS = (
    {"league": "Ligue 1", "competition": "Ligue 1"},
    {"league": "UEFA Champions League", "stage": "Group stage"},
    {"league": "Ligue 2", "competition": "Ligue 2"},
)
ROUND_S = 0.25
ROUNDS = 25


def _measure(breaker, status: str, batch: int):
    contexts = cycle(CONTEXTS)

    def call() -> None:
        breaker.get_ttl(60, status, next(contexts))

    return lambda: calls_per_second(call, ROUND_S, batch)


def panic_path(bench: BenchServer) -> list[Row]:
    bench.client.flushall()
    ours_cached = VIXCircuitBreaker(bench.client, key_prefix="bench:ours1:", refresh_interval_s=1)
    ours_every = VIXCircuitBreaker(bench.client, key_prefix="bench:ours0:", refresh_interval_s=0)
    seed = SeedBreaker(bench.client, key_prefix="bench:seed:")
    rounds = Rounds().run(
        {
            "ours1": _measure(ours_cached, "panic", 1000),
            "ours0": _measure(ours_every, "panic", 50),
            "seed": _measure(seed, "panic", 50),
        },
        ROUNDS,
    )
    cached, every = rounds.ratio("ours1", "seed"), rounds.ratio("ours0", "seed")
    return [
        Row("1", "panic path, 1 thread, refresh_interval_s=1", rate(rounds.median("ours1")),
            rate(rounds.median("seed")), times(cached), "≥ 100×", cached >= 100),
        Row("1", "panic path, 1 thread, refresh_interval_s=0", rate(rounds.median("ours0")),
            rate(rounds.median("seed")), times(every), "≥ 2.5×", every >= 2.5),
    ]


def calm_path(bench: BenchServer) -> list[Row]:
    bench.client.flushall()
    ours = VIXCircuitBreaker(bench.client, key_prefix="bench:ours:")
    seed = SeedBreaker(bench.client, key_prefix="bench:seed:")
    rounds = Rounds().run({"ours": _measure(ours, "normal", 1000), "seed": _measure(seed, "normal", 100)}, ROUNDS)
    ratio = rounds.ratio("ours", "seed")
    commands = {}
    for name, breaker in (("ours", ours), ("seed", seed)):
        before = server_commands(bench.client)
        for i in range(10_000):
            breaker.get_ttl(60, "normal" if i % 2 else "warning", CONTEXTS[i % 3])
        commands[name] = server_commands(bench.client) - before
    return [
        Row("2", "calm path, 1 thread", rate(rounds.median("ours")), rate(rounds.median("seed")), times(ratio),
            "≥ 50×", ratio >= 50),
        Row("2", "calm path: server commands per 10 000 calls (ours: at most one heartbeat round trip, ≤ 8 "
            "commands inside it)", f"{commands['ours']:,}", f"{commands['seed']:,}", "—", "≤ 8",
            commands["ours"] <= 8),
    ]
