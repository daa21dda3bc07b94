"""Where the protocol's script is unavailable or values are odd: ACL users, a minimal client, decoding clients,
Redis 7.0 without per-field expiry. The breaker keeps its promises on each."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest
import redis
from structlog.testing import capture_logs

from breaker import PanicClock, VIXCircuitBreaker, redis_client
from breaker.heartbeat import beat_json
from breaker.ops import read_fleet

KEY = "brain:panic_start_ts"


def server_now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def _acl_client(real_redis, redis_url, name, rules):
    real_redis.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw", "~*", "&*", "+@all", *rules)
    host_port = redis_url.split("//", 1)[1]
    return redis_client(f"redis://{name}:pw@{host_port}", timeout_ms=1000)


@pytest.fixture
def no_multi_no_scripts(real_redis, redis_url):
    """A user denied MULTI/EXEC/WATCH and scripting: only the seed's separate commands remain."""
    client = _acl_client(real_redis, redis_url, "seedy", ["-multi", "-exec", "-watch", "-eval", "-evalsha"])
    yield client
    client.close()
    real_redis.execute_command("ACL", "DELUSER", "seedy")


def test_acl_user_without_multi_or_scripts_falls_back_to_separate_commands(real_redis, no_multi_no_scripts):
    """Denied MULTI/EXEC and EVAL: SET NX EX, GET, EXPIRE instead, logged once; tiers still advance."""
    real_redis.set(KEY, repr(server_now(real_redis) - 20 * 60))  # no expiry: the fallback adds one
    breaker = VIXCircuitBreaker(no_multi_no_scripts, refresh_interval_s=0)
    with capture_logs() as logs:
        for _ in range(3):
            assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")
    fallback = [e for e in logs if e["event"] == "REDIS_WITHOUT_SCRIPTING"]
    assert len(fallback) == 1 and fallback[0]["log_level"] == "warning" and "no permissions" in fallback[0]["reason"]
    assert not [e for e in logs if e["log_level"] == "error"]
    assert 0 < real_redis.ttl(KEY) <= 900
    assert real_redis.hlen("brain:workers") == 1  # the beat too, as a plain HSET


def test_fallback_first_writer_still_wins(real_redis, no_multi_no_scripts, redis_url):
    """Two fallback workers and one scripted worker agree on one start."""
    scripted = VIXCircuitBreaker(redis_client(redis_url))
    fallback = VIXCircuitBreaker(no_multi_no_scripts)
    fallback.get_ttl(60, "panic")
    start = real_redis.get(KEY)
    scripted.get_ttl(60, "panic")
    VIXCircuitBreaker(no_multi_no_scripts).get_ttl(60, "panic")
    assert real_redis.get(KEY) == start


def test_fallback_never_renews_an_unusable_value(real_redis, no_multi_no_scripts):
    """Without an atomic step garbage is not replaced: the worker fails safe and leaves its expiry to run out."""
    real_redis.set(KEY, "garbage", ex=100)
    real_redis.expire(KEY, 30)
    breaker = VIXCircuitBreaker(no_multi_no_scripts, refresh_interval_s=0, retry_after_s=0)
    with capture_logs() as logs:
        for _ in range(3):
            assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
    assert real_redis.get(KEY) == b"garbage" and real_redis.ttl(KEY) <= 30
    [error] = [e for e in logs if e["log_level"] == "error"]  # once, not once per call
    assert error["event"] == "INVALID_PANIC_TIMESTAMP" and "not replaced" in error["error"]


def test_acl_user_without_watch_and_multi_replaces_garbage(real_redis, redis_url):
    """Denied WATCH and MULTI (scripts allowed): the script replaces the bad value, no stuck TTL 0."""
    client = _acl_client(real_redis, redis_url, "nowatch", ["-multi", "-exec", "-watch"])
    try:
        real_redis.set(KEY, "garbage")
        breaker = VIXCircuitBreaker(client)
        with capture_logs() as logs:
            assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
        assert abs(float(real_redis.get(KEY)) - server_now(real_redis)) < 5
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["INVALID_PANIC_TIMESTAMP"]
    finally:
        client.close()
        real_redis.execute_command("ACL", "DELUSER", "nowatch")


class MinimalRedis:
    """A team's own test double: get/set/expire/delete over a dict, nothing else (no scripts, no MULTI)."""

    def __init__(self):
        self.data, self.expiry, self.commands = {}, {}, []

    def get(self, key):
        self.commands.append("get")
        return self.data.get(key)

    def set(self, key, value, nx=False, ex=None):
        self.commands.append("set")
        if nx and key in self.data:
            return None
        self.data[key], self.expiry[key] = str(value).encode(), ex
        return True

    def expire(self, key, seconds):
        self.commands.append("expire")
        self.expiry[key] = seconds
        return key in self.data

    def delete(self, *keys):
        return sum(self.data.pop(key, None) is not None for key in keys)


def test_a_minimal_client_gets_the_seeds_commands(fake_clock):
    """A client with only get/set/expire/delete: the seed's SET NX EX, GET, EXPIRE; tiers advance; logged once."""
    client = MinimalRedis()
    breaker = VIXCircuitBreaker(client, clock=fake_clock, refresh_interval_s=0)
    with capture_logs() as logs:
        assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (0, "PANIC_FULL")
        fake_clock.advance(20 * 60)
        assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")
        assert breaker.get_ttl(60, "normal") == (60, "NORMAL")
    assert float(client.data[KEY]) == fake_clock() - 20 * 60 and client.expiry[KEY] == 900
    assert client.commands[:5] == ["set", "get", "expire", "set", "get"]  # SET NX EX, GET, EXPIRE, the mark, override
    assert [e["event"] for e in logs if e["event"] == "REDIS_WITHOUT_SCRIPTING"] == ["REDIS_WITHOUT_SCRIPTING"]
    assert not [e for e in logs if e["log_level"] == "error"]


class Wrapped:
    """Not a plain redis.Redis: called through redis-py, not the bounded path."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "wrapped"])
def test_decoding_client_replaces_a_non_utf8_value(real_redis, redis_url, wrap):
    """decode_responses=True meeting bytes that are not UTF-8: replaced by now, not stuck at TTL 0."""
    real_redis.set(KEY, b"\xff\xfe\x80")
    real_redis.set("brain:panic_override", b'{"mode": "force_full", "who": "\xff", "why": "", "since": 1}')
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=1)
    breaker = VIXCircuitBreaker(Wrapped(client) if wrap else client, refresh_interval_s=0)
    try:
        with capture_logs() as logs:
            assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
            assert breaker.get_ttl(60, "panic") == (0, "PANIC_FULL")
        assert abs(float(real_redis.get(KEY)) - server_now(real_redis)) < 5
        errors = sorted(e["event"] for e in logs if e["log_level"] == "error")
        assert errors == ["INVALID_PANIC_OVERRIDE", "INVALID_PANIC_TIMESTAMP"]
    finally:
        client.close()


# --- Redis 7.0: no HEXPIRE ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis7_url():
    """Debian's redis-server 7.0 on a free loopback port (no per-field hash expiry)."""
    port = _free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    client.close()
    process.terminate()
    process.wait(10)


def test_redis_7_without_hexpire_beats_and_readers_prune(redis7_url):
    """On Redis 7.0 the breaker detects once that HEXPIRE is missing, beats without it; read_fleet prunes."""
    admin = redis.Redis.from_url(redis7_url)
    admin.flushall()
    assert admin.info("server")["redis_version"].startswith("7.0")
    clock = PanicClock(admin)
    admin.set(KEY, repr(server_now(admin) - 20 * 60), ex=900)
    breaker = VIXCircuitBreaker(redis_client(redis7_url, timeout_ms=1000), refresh_interval_s=0)
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")
    assert breaker._hexpire is False
    admin.config_resetstat()
    assert breaker.get_ttl(60, "panic", {"stakes": "low"}) == (5, "PANIC_PARTIAL")
    assert "cmdstat_hexpire" not in admin.info("commandstats")  # detected once, not tried again
    old = beat_json(host="h", pid=1, started=1.0, interval_s=1.0, calls={}, fail_safe=0, tiers={}, override=None,
                    error=None, version="x", seen=server_now(admin) - 120)
    admin.hset("brain:workers", "h:1:dead", old)
    view = read_fleet(clock)
    assert {w.worker_id: w.state for w in view.workers}["h:1:dead"] == "gone"
    assert admin.hkeys("brain:workers") == [breaker.worker_id.encode()]
    assert json.loads(admin.hget("brain:workers", breaker.worker_id))["v"] == 1
