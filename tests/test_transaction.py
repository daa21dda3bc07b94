"""The hand-packed MULTI/EXEC of a panic observation: same answers and commands as the pipeline, same faults."""

import os
import signal

import pytest
import redis

from breaker import PanicClock, redis_client
from breaker.ops.embedded import start_embedded_server
from breaker.transaction import can_pack_by_hand, pack

KEY = "brain:panic_start_ts"
LAST_SEEN = "brain:panic_last_seen_ts"
NOW = 1_800_000_000.0


class Wrapped:
    """A client wrapper (as in the fault tests): not a plain redis.Redis, so it gets the pipeline."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)


def prepare(client, state):
    client.delete(KEY, LAST_SEEN)
    if state == "hash":
        client.hset(KEY, "a", "1")
    elif state is not None:
        client.set(KEY, state)


@pytest.mark.parametrize("state", [None, "1799999000.0", "garbage", "nan", "hash", b"\xff\xfe"])
def test_packed_and_pipeline_observations_agree(real_redis, state):
    """For every stored value, the packed path answers and leaves the key exactly as the pipeline does."""
    outcomes = []
    for client in (real_redis, Wrapped(real_redis)):
        prepare(real_redis, state)
        observation = PanicClock(client).observe(NOW)
        outcomes.append((observation, real_redis.get(KEY), real_redis.ttl(KEY) > 0, real_redis.get(LAST_SEEN)))
    assert outcomes[0] == outcomes[1]


def test_packed_observation_is_the_same_commands_in_one_multi_exec(real_redis):
    """MULTI, SET NX EX, GET, EXPIRE, SET EX, EXEC: one transaction, nothing more."""
    before = real_redis.info("commandstats")
    PanicClock(real_redis).observe(NOW)
    after = real_redis.info("commandstats")

    def delta(name):
        stat = f"cmdstat_{name}"
        return after.get(stat, {"calls": 0})["calls"] - before.get(stat, {"calls": 0})["calls"]

    assert {name: delta(name) for name in ("multi", "set", "get", "expire", "exec")} == {
        "multi": 1, "set": 2, "get": 1, "expire": 1, "exec": 1,
    }


@pytest.mark.parametrize("protocol", [2, 3])
def test_decoding_clients_and_both_protocols(real_redis, redis_url, protocol):
    """A client with decode_responses, on RESP2 or RESP3, reads the same start."""
    client = redis.Redis.from_url(redis_url, decode_responses=True, protocol=protocol)
    try:
        first = PanicClock(client).observe(NOW)
        second = PanicClock(client).observe(NOW + 5)
    finally:
        client.close()
    assert (first.start, first.initialized) == (NOW, True)
    assert (second.start, second.initialized) == (NOW, False)


def test_non_ascii_prefix_is_packed_with_its_byte_length(real_redis):
    """Key lengths in the packed command count bytes, not characters."""
    clock = PanicClock(real_redis, key_prefix="drill:é:")
    assert clock.observe(NOW).initialized
    assert float(real_redis.get("drill:é:panic_start_ts")) == NOW


def test_only_plain_clients_are_packed_by_hand(real_redis):
    """A plain redis.Redis is packed by hand; a wrapper keeps redis-py's pipeline."""
    assert can_pack_by_hand(real_redis)
    assert not can_pack_by_hand(Wrapped(real_redis))
    assert pack(b"GET", b"k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


def test_hung_server_times_out_and_the_connection_is_not_reused_half_read():
    """A timeout mid-transaction raises; after the server wakes, replies are not shifted by one."""
    server = start_embedded_server()
    client = redis_client(server.connection_url, timeout_ms=50)
    try:
        clock = PanicClock(client)
        assert clock.observe(NOW).initialized
        os.kill(server._process.pid, signal.SIGSTOP)
        try:
            with pytest.raises(redis.exceptions.TimeoutError):
                clock.observe(NOW + 1)
        finally:
            os.kill(server._process.pid, signal.SIGCONT)
        again = clock.observe(NOW + 2)
        assert (again.start, again.initialized) == (NOW, False)
        assert client.get(KEY) == b"1800000000.0"
    finally:
        client.close()
        server.stop()
