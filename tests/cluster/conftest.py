"""Cluster fixtures: one Valkey cluster for the session, and one of its own for each destructive test."""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster

from breaker import redis_client

from .valkey_cluster import ValkeyCluster


def running_cluster():
    cluster = ValkeyCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def valkey_cluster():
    """One cluster for the session's non-destructive tests."""
    yield from running_cluster()


@pytest.fixture
def own_cluster():
    """A cluster of the test's own, for tests that kill nodes."""
    yield from running_cluster()


@pytest.fixture
def cluster_url(valkey_cluster) -> str:
    """The session cluster's URL, every master flushed first."""
    with valkey_cluster.client() as admin:
        admin.flushall(target_nodes=RedisCluster.PRIMARIES)
    return valkey_cluster.url


@pytest.fixture
def cluster_redis(cluster_url):
    """A worker-style cluster client (no retries, 1 s timeouts) on the flushed session cluster."""
    client = redis_client(cluster_url, timeout_ms=1000)
    yield client
    client.close()
