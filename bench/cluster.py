"""Cluster rows: the panic path against one master of a real 3+3 Valkey cluster, beside the standalone ones.

The cluster client routes each transaction to the master owning the ``{brain}`` slot; redis-py's
``ClusterPipeline`` costs more Python per round trip than the hand-packed MULTI a plain client gets.
"""

from __future__ import annotations

from breaker import VIXCircuitBreaker, redis_client

from .harness import Rounds
from .seed_protocol import SeedBreaker
from .single_thread import ROUNDS, _measure
from .table import Row, rate, times


def panic_path() -> list[Row]:
    """The seed's three commands against ours through the same cluster client, on a cluster of the run's own."""
    from tests.cluster.valkey_cluster import ValkeyCluster  # the cluster the tests build

    cluster = ValkeyCluster().start()
    client = redis_client(cluster.url, timeout_ms=1000)
    try:
        client.cluster.ping()
        ours_cached = VIXCircuitBreaker(client, key_prefix="{bench}:ours1:", refresh_interval_s=1)
        ours_every = VIXCircuitBreaker(client, key_prefix="{bench}:ours0:", refresh_interval_s=0)
        seed = SeedBreaker(client, key_prefix="{bench}:seed:")
        rounds = Rounds().run(
            {
                "ours1": _measure(ours_cached, "panic", 1000),
                "ours0": _measure(ours_every, "panic", 50),
                "seed": _measure(seed, "panic", 50),
            },
            ROUNDS,
        )
    finally:
        client.close()
        cluster.stop()
    cached, every = rounds.ratio("ours1", "seed"), rounds.ratio("ours0", "seed")
    return [
        Row("C", "cluster: panic path, 1 thread, refresh_interval_s=1 (one master of 3+3)",
            rate(rounds.median("ours1")), rate(rounds.median("seed")), times(cached), "≥ 100×", cached >= 100),
        Row("C", "cluster: panic path, 1 thread, refresh_interval_s=0 (one master of 3+3)",
            rate(rounds.median("ours0")), rate(rounds.median("seed")), times(every), "> 1× (1 round trip vs 3)",
            every > 1),
    ]
