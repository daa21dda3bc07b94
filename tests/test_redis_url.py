"""REDIS_URL: the schemes a worker and the console accept, the errors that stop start-up, what is redacted."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from breaker import ConfigError, PanicMode, Settings, VIXCircuitBreaker, redact_url, redis_client
from breaker.client import ClusterClient, is_cluster_client, stall_risks
from breaker.keyspace import cluster_prefix_problem, default_key_prefix, hash_tag
from breaker.ops.target import Target

MALFORMED = [
    "redis+sentinel://127.0.0.1:26379/mymaster",
    "redis://127.0.0.1:99999/0",
    "redis://127.0.0.1:port/0",
    "redis+cluster://",
    "redis+cluster://127.0.0.1:7000,127.0.0.1:99999",
    "rediss+cluster://,",
    "redis+cluster://127.0.0.1:7000/2",
    "http://127.0.0.1:80",
]


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_redis_url_stops_start_up_naming_redis_url(url):
    """An unknown scheme, a bad port or an empty host list is a ConfigError naming REDIS_URL, at from_env time."""
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings.from_env({"REDIS_URL": url})


@pytest.mark.parametrize("url", MALFORMED)
def test_from_settings_raises_config_error_for_a_malformed_url(url):
    """VIXCircuitBreaker.from_settings reports a bad URL as ConfigError (naming REDIS_URL), not a bare ValueError."""
    with pytest.raises(ConfigError, match="REDIS_URL"):
        VIXCircuitBreaker.from_settings(Settings(redis_url=url))


def test_config_error_message_redacts_the_password():
    """The start-up error names the URL without its password."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_URL": "redis+sentinel://u:hunter2@h:26379?ssl_password=s3cret"})
    assert "hunter2" not in str(caught.value) and "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("rediss://h:6380/0?ssl_password=keypass&ssl_cert_reqs=required",
         "rediss://h:6380/0?ssl_password=***&ssl_cert_reqs=required"),
        ("rediss+cluster://u:pw@h1:7000,h2:7001?ssl_password=keypass",
         "rediss+cluster://u:***@h1:7000,h2:7001?ssl_password=***"),
        ("redis://h:6379/0?Password=x&auth_token=y&db=1", "redis://h:6379/0?Password=***&auth_token=***&db=1"),
    ],
)
def test_password_like_query_parameters_are_redacted(url, redacted):
    """?ssl_password= and any other password-like query parameter is shown as ***, cluster URLs included."""
    assert redact_url(url) == redacted


def test_an_unparseable_url_is_not_echoed():
    """A URL that does not even split is replaced by a phrase: nothing of it reaches a screen."""
    assert redact_url("redis://u:pw@[::1") == "(a URL that does not parse)"


@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("redis+cluster://10.0.0.1:7000,10.0.0.2:7001", [("10.0.0.1", 7000), ("10.0.0.2", 7001)]),
        ("rediss+cluster://u:p@[::1]:7000", [("::1", 7000)]),
        ("redis+cluster://cache.internal", [("cache.internal", 6379)]),
    ],
)
def test_cluster_url_gives_a_worker_safe_cluster_client(url, nodes):
    """A cluster URL gives a ClusterClient with its startup nodes, 50 ms timeouts and no stall risk, without
    connecting (the cluster is asked for its slot map on first use)."""
    client = redis_client(url)
    assert isinstance(client, ClusterClient) and is_cluster_client(client)
    assert client.startup_nodes == nodes
    assert client.connection_kwargs["socket_timeout"] == 0.05
    assert client.connection_kwargs["socket_connect_timeout"] == 0.05
    assert stall_risks(client) == []
    assert client.connection_kwargs.get("ssl", False) == url.startswith("rediss")


def test_cluster_settings_default_to_the_hash_tagged_prefix():
    """On a cluster URL the default prefix is {brain}: and it is the production namespace, not a drill."""
    settings = Settings.from_env({"REDIS_URL": "redis+cluster://127.0.0.1:7000"})
    assert settings.key_prefix == "{brain}:" and settings.cluster and settings.is_default_prefix
    assert not Target(None, settings.redis_url, embedded=False, settings=settings).is_drill_namespace


def test_standalone_keeps_the_seed_prefix_and_calls_a_tagged_one_a_drill():
    """On a standalone server brain: stays the production prefix; {brain}: there is a drill namespace."""
    assert Settings.from_env({"REDIS_URL": "redis://h:6379"}).key_prefix == "brain:"
    tagged = Settings.from_env({"REDIS_URL": "redis://h:6379", "BREAKER_KEY_PREFIX": "{brain}:"})
    assert Target(None, tagged.redis_url, embedded=False, settings=tagged).is_drill_namespace


def test_cluster_with_an_untagged_prefix_is_refused():
    """BREAKER_KEY_PREFIX without a hash tag on a cluster would split every transaction: refused at start-up."""
    with pytest.raises(ConfigError, match="BREAKER_KEY_PREFIX"):
        Settings.from_env({"REDIS_URL": "redis+cluster://h:7000", "BREAKER_KEY_PREFIX": "brain:"})
    tagged = Settings.from_env({"REDIS_URL": "redis+cluster://h:7000", "BREAKER_KEY_PREFIX": "{drill7}:"})
    assert tagged.key_prefix == "{drill7}:" and not tagged.is_default_prefix


@pytest.mark.parametrize(
    ("prefix", "tag"),
    [("{brain}:", "brain"), ("brain:", None), ("{}:", None), ("x{a}:{b}", "a"), ("{brain:", None), ("}{x}", "x")],
)
def test_hash_tag_follows_the_cluster_rule(prefix, tag):
    """The tag is what lies between the first { and the next }, when not empty (Redis Cluster's key hashing)."""
    assert hash_tag(prefix) == tag
    assert (cluster_prefix_problem(prefix) is None) == (tag is not None)


def test_default_prefix_depends_on_the_client_kind():
    """One function decides the production prefix: {brain}: for a cluster, brain: otherwise."""
    assert default_key_prefix(cluster=True) == "{brain}:" and default_key_prefix(cluster=False) == "brain:"


def test_breaker_on_a_cluster_client_defaults_to_the_tagged_prefix_and_refuses_an_untagged_one():
    """VIXCircuitBreaker picks {brain}: for a cluster client, and refuses a prefix that spreads over slots."""
    client = redis_client("redis+cluster://127.0.0.1:7000")
    assert VIXCircuitBreaker(client).key_prefix == "{brain}:"
    assert client._cluster is None  # constructing a breaker never connects: a cluster that is down cannot stop it
    with pytest.raises(ValueError, match="hash tag"):
        VIXCircuitBreaker(client, key_prefix="brain:")
    assert VIXCircuitBreaker(redis_client("redis://127.0.0.1:6379")).key_prefix == "brain:"


def test_unreachable_cluster_fails_safe_with_one_error(fake_clock):
    """A worker that starts while no cluster node answers: panics answer (0, PANIC_FULL), calm stays calm,
    one ERROR for the outage, nothing raises."""
    from tests.faults.conftest import free_port

    client = redis_client(f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}")
    breaker = VIXCircuitBreaker(client, clock=fake_clock)
    with capture_logs() as logs:
        answers = []
        for _ in range(3):
            answers.append(breaker.get_ttl(60, "panic"))
            fake_clock.advance(2)
        calm = breaker.get_ttl(60, "normal")
    assert answers == [(0, PanicMode.PANIC_FULL)] * 3 and calm == (60, PanicMode.NORMAL)
    errors = [log for log in logs if log["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["REDIS_UNAVAILABLE"]
    assert "no cluster node answered" in errors[0]["error"]
