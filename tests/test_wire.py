"""The bounded round trip (``breaker.wire``): same answers as redis-py's own call, one deadline, same faults."""

import os
import signal

import pytest
import redis

from breaker import PanicClock, redis_client
from breaker.ops.embedded import start_embedded_server
from breaker.wire import can_bound, pack

KEY = "brain:panic_start_ts"
LAST_SEEN = "brain:panic_last_seen_ts"
NOW = 1_800_000_000.0


class Wrapped:
    """A client wrapper (as in the fault tests): not a plain redis.Redis, so it is called the ordinary way."""

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
def test_bounded_and_ordinary_observations_agree(real_redis, state):
    """For every stored value, the bounded path answers and leaves the key exactly as redis-py's evalsha does."""
    outcomes = []
    for client in (real_redis, Wrapped(real_redis)):
        prepare(real_redis, state)
        observation = PanicClock(client).observe(NOW)
        outcomes.append((observation, real_redis.get(KEY), real_redis.ttl(KEY) > 0, real_redis.get(LAST_SEEN)))
    assert outcomes[0] == outcomes[1]


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


def test_only_plain_clients_take_the_bounded_path(real_redis):
    """A plain redis.Redis is called through wire; a wrapper is called through redis-py."""
    assert can_bound(real_redis)
    assert not can_bound(Wrapped(real_redis))
    assert pack(b"GET", b"k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


@pytest.mark.parametrize("keep_connection", [False, True], ids=["per-call-checkout", "kept-connection"])
def test_hung_server_times_out_and_the_connection_is_not_reused_half_read(keep_connection):
    """A timeout mid-reply raises; the connection (a worker's kept one too) is dropped, so after the server wakes
    replies are not shifted by one."""
    server = start_embedded_server()
    client = redis_client(server.connection_url, timeout_ms=50)
    try:
        clock = PanicClock(client, keep_connection=keep_connection)
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


@pytest.mark.parametrize("protocol", [2, 3])
def test_replies_of_every_shape_are_read(real_redis, redis_url, protocol):
    """Strings, integers, nulls, arrays and errors come back as redis-py would give them (RESP2 and RESP3)."""
    from breaker import wire

    client = redis.Redis.from_url(redis_url, protocol=protocol)
    try:
        client.set("k", "v")
        call = lambda *args: wire.call(client, pack(*args), budget_s=1.0)  # noqa: E731
        assert call(b"GET", b"k") == b"v"
        assert call(b"GET", b"missing") is None
        assert call(b"INCR", b"n") == 1
        assert call(b"EVAL", b"return {1, 'a', false}", b"0") == [1, b"a", None]
        with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
            call(b"HGET", b"k", b"f")
        with pytest.raises(redis.exceptions.NoScriptError):
            call(b"EVALSHA", b"0" * 40, b"0")
        assert call(b"PING") == b"PONG"  # the connection is still in step after the error replies
    finally:
        client.close()


def test_a_reply_larger_than_allowed_is_refused(real_redis):
    """A reply over max_reply_bytes raises DataError and closes the connection."""
    from breaker import wire

    real_redis.set("big", b"x" * 100_000)
    with pytest.raises(redis.exceptions.DataError):
        wire.call(real_redis, pack(b"GET", b"big"), budget_s=1.0)
    assert real_redis.get("k") is None  # the pool hands out a clean connection afterwards
