"""Key prefixes and Redis Cluster hash slots: which prefix is the default, and which keeps a transaction in one slot.

A Redis Cluster runs a MULTI only when every key it touches hashes to one slot. The project's keys
(clock, last observation, override, heartbeats, audit) are written together, so on a cluster their
prefix carries a hash tag: ``{brain}:`` puts all of them in the slot of ``brain``. On a standalone
server the seed's ``brain:`` stays, so seed-era workers and ours share one clock.
"""

from __future__ import annotations

from typing import Any

from redis.cluster import ClusterPipeline

STANDALONE_KEY_PREFIX = "brain:"
CLUSTER_KEY_PREFIX = "{brain}:"


def default_key_prefix(cluster: bool) -> str:
    """The production namespace: ``{brain}:`` on a cluster client, the seed's ``brain:`` otherwise."""
    return CLUSTER_KEY_PREFIX if cluster else STANDALONE_KEY_PREFIX


def hash_tag(prefix: str) -> str | None:
    """The hash tag a prefix pins every key under it to (Redis Cluster's rule: the text between the
    first ``{`` and the next ``}``, when not empty), or None when keys under it spread over slots."""
    opening = prefix.find("{")
    if opening < 0:
        return None
    closing = prefix.find("}", opening + 1)
    if closing <= opening + 1:
        return None
    return prefix[opening + 1:closing]


def cluster_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot serve a cluster (its keys would land in different slots), or None when it can."""
    if hash_tag(prefix) is not None:
        return None
    return (f"{prefix!r} has no hash tag, so the clock's keys land in different slots of a Redis Cluster and "
            f"every transaction fails; use a hash-tagged prefix such as {CLUSTER_KEY_PREFIX!r}")


#: TIME from inside a script: the one way to read a cluster node's clock inside a transaction that redis-py's
#: cluster pipeline accepts (it refuses keyless commands, TIME among them); the key only routes it to the slot.
_TIME_SCRIPT = "return redis.call('TIME')"


def queue_time(pipe: Any, anchor_key: str) -> None:
    """Queue the server's ``TIME`` on a transaction ``pipe``, on the node that owns ``anchor_key``'s slot.

    The reply is ``TIME``'s pair (seconds, microseconds) either way; read it with ``clock.server_time``.
    """
    if isinstance(pipe, ClusterPipeline):
        pipe.execute_command("EVAL", _TIME_SCRIPT, 1, anchor_key)  # ClusterPipeline.eval is blocked
    else:
        pipe.time()
