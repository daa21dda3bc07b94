"""Fixtures for operator tools: ACL users on the session's real server, removed after the test."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from breaker import redis_client
from breaker.ops.cli import cli
from tests.ops.cli_helpers import mint


@pytest.fixture
def acl_user(redis_url, real_redis):
    """Make ACL users on the real server (``rules`` as for ACL SETUSER); return their URL; delete them afterwards."""
    made: list[str] = []

    def make(name: str, password: str, *rules: str) -> str:
        real_redis.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", "~*", "&*", *rules)
        made.append(name)
        parts = urlsplit(redis_url)
        return f"redis://{name}:{password}@{parts.hostname}:{parts.port}/0"

    yield make
    for name in made:
        real_redis.execute_command("ACL", "DELUSER", name)


@pytest.fixture
def client_for():
    """Clients built from URLs during a test, closed afterwards."""
    clients = []

    def build(url: str):
        clients.append(redis_client(url, timeout_ms=1000))
        return clients[-1]

    yield build
    for client in clients:
        client.close()


@pytest.fixture(autouse=True)
def _restore_breaker_logger():
    """The CLI configures logging for its own process; in-process runs must not leave that to later tests."""
    logger = logging.getLogger("breaker")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def alice_token(real_redis):
    """An operator's API token for alice."""
    return mint(real_redis, "alice", "operator")


@pytest.fixture
def run(real_redis, redis_url, alice_token):
    """Invoke the CLI in-process (click's runner) with REDIS_URL pointing at the test server, as alice (an
    operator's API token in VIX_BREAKER_TOKEN) unless ``env`` says otherwise."""
    runner = CliRunner()

    def invoke(*args, input=None, env=None):
        return runner.invoke(cli, list(args), input=input,
                             env={"REDIS_URL": redis_url, "VIX_BREAKER_TOKEN": alice_token, **(env or {})})

    return invoke
