"""Fork safety on a cluster client (issue 25): a child forked from a parent that answered through a
RedisCluster client is its own worker (own id, own node connections) and answers from the cluster."""

from __future__ import annotations

from breaker import VIXCircuitBreaker, redis_client
from tests.test_fork import LOW, PARTIAL, _answer_once, _collect, _fork, server_now

PREFIX = "{brain}:"
CHILDREN = 4


def test_children_forked_from_a_cluster_parent_are_workers_of_their_own(cluster_redis, cluster_url):
    cluster_redis.set(f"{PREFIX}panic_start_ts", repr(server_now(cluster_redis) - 20 * 60), ex=900)
    parent = VIXCircuitBreaker(redis_client(cluster_url, timeout_ms=1000))
    assert parent.get_ttl(60, "panic", LOW) == tuple(PARTIAL)  # the parent holds node connections now
    results = [_collect(pid, read) for pid, read in [_fork(lambda: _answer_once(parent)) for _ in range(CHILDREN)]]
    assert [r["answer"] for r in results] == [PARTIAL] * CHILDREN
    ids = {r["id"] for r in results}
    assert len(ids) == CHILDREN and parent.worker_id not in ids
    workers = {k.decode() for k in cluster_redis.hkeys(f"{PREFIX}workers")}
    assert ids | {parent.worker_id} <= workers, "every child beats under its own id"
    assert parent.get_ttl(60, "panic", LOW) == tuple(PARTIAL)  # the parent's connections are untouched
