"""Settings from the environment and the Redis client builder."""

import pytest

from breaker import ConfigError, Settings, redact_url, redis_client
from breaker.client import stall_risks


def test_defaults():
    """An empty environment gives the documented defaults."""
    s = Settings.from_env({})
    assert (s.redis_url, s.key_prefix, s.panic_key_ttl_s, s.end_on_normal) == (None, "brain:", 900, False)
    assert (s.refresh_interval_s, s.redis_timeout_ms, s.log_level, s.log_format) == (1.0, 50.0, "INFO", "console")


def test_values_are_parsed():
    """Every variable is read and converted."""
    s = Settings.from_env({
        "REDIS_URL": "redis://h:1/0", "BREAKER_KEY_PREFIX": "drill:", "BREAKER_PANIC_KEY_TTL_S": "86400",
        "BREAKER_END_ON_NORMAL": "yes", "BREAKER_REFRESH_INTERVAL_S": "0", "BREAKER_REDIS_TIMEOUT_MS": "20",
        "BREAKER_LOG_LEVEL": "debug", "BREAKER_LOG_FORMAT": "JSON",
    })
    assert s.key_prefix == "drill:" and s.panic_key_ttl_s == 86400 and s.end_on_normal
    assert s.refresh_interval_s == 0 and s.redis_timeout_ms == 20 and s.log_level == "DEBUG" and s.log_format == "json"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BREAKER_PANIC_KEY_TTL_S", "0"), ("BREAKER_PANIC_KEY_TTL_S", "15m"), ("BREAKER_END_ON_NORMAL", "maybe"),
        ("BREAKER_REFRESH_INTERVAL_S", "-1"), ("BREAKER_REFRESH_INTERVAL_S", "nan"),
        ("BREAKER_REDIS_TIMEOUT_MS", "0"), ("BREAKER_LOG_LEVEL", "loud"), ("BREAKER_LOG_FORMAT", "xml"),
        ("BREAKER_KEY_PREFIX", "has space:"), ("BREAKER_MAX_OVERRIDE_MIN", "0"), ("BREAKER_MAX_OVERRIDE_MIN", "inf"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    """A bad value stops start-up with a message naming the variable and what it accepts."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_redis_client_from_env_or_none(monkeypatch):
    """No URL and no REDIS_URL: no client. REDIS_URL is used when url is None."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert redis_client() is None
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/3")
    assert redis_client().connection_pool.connection_kwargs["db"] == 3


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6380/0", "unix:///tmp/r.sock?db=2"])
def test_redis_client_is_worker_safe(url):
    """50 ms connect and read timeouts, retries off, for every supported scheme."""
    client = redis_client(url)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.05 and kwargs["socket_connect_timeout"] == 0.05
    assert kwargs["retry"].get_retries() == 0
    assert stall_risks(client) == []


def test_redis_client_rejects_unknown_scheme():
    """An unsupported scheme is refused with the (redacted) URL in the message."""
    with pytest.raises(ValueError, match=r"http://u:\*\*\*@h"):
        redis_client("http://u:secret@h:1")


def test_redact_url():
    """Passwords never reach a screen or a log."""
    assert redact_url("redis://user:pw@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact_url("rediss://:pw@host:6380") == "rediss://:***@host:6380"
    assert redact_url("redis://host:6379") == "redis://host:6379"
    assert redact_url("redis://host:6379/0?password=hunter2&db=1") == "redis://host:6379/0?password=***&db=1"


def test_seed_mode_setting_defaults_to_a_day():
    """BREAKER_END_ON_NORMAL without an explicit TTL takes the seed's 86400 s expiry."""
    assert Settings.from_env({"BREAKER_END_ON_NORMAL": "true"}).panic_key_ttl_s == 86400
    assert Settings.from_env({"BREAKER_END_ON_NORMAL": "true", "BREAKER_PANIC_KEY_TTL_S": "600"}).panic_key_ttl_s == 600


def test_json_logging_renders_one_json_object_per_line(capsys):
    """BREAKER_LOG_FORMAT=json: each event is a JSON line with event, level and timestamp; DEBUG filtered at INFO."""
    import json

    import structlog

    from breaker import configure_logging

    configure_logging("INFO", "json")
    log = structlog.get_logger("breaker")
    log.debug("HIDDEN")
    log.info("VIX_TTL_STATE_CHANGE", tier=2)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "VIX_TTL_STATE_CHANGE" and record["level"] == "info" and record["tier"] == 2
    assert "timestamp" in record


def test_blocking_pool_wait_is_a_stall_risk():
    """A BlockingConnectionPool that waits seconds for a free connection is named as a stall risk."""
    import redis

    pool = redis.BlockingConnectionPool(host="127.0.0.1", port=1, socket_timeout=0.05, socket_connect_timeout=0.05,
                                        timeout=20)
    client = redis.Redis(connection_pool=pool)
    assert any("BlockingConnectionPool timeout=20" in r for r in stall_risks(client))
