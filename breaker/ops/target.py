"""The Redis the console and CLI talk to: ``REDIS_URL``, or an embedded server started on demand."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..client import is_cluster_url, redact_url, redis_client
from ..clock import PanicClock
from ..config import ConfigError, Settings


@dataclass
class Target:
    """A connected Redis plus what operators need to know about it."""

    client: Any
    url: str
    embedded: bool
    settings: Settings
    server: Any = field(default=None, repr=False)

    @property
    def display(self) -> str:
        return ("embedded " if self.embedded else "") + redact_url(self.url)

    @property
    def is_drill_namespace(self) -> bool:
        """A prefix other than the production one for this kind of target (``{brain}:`` on a cluster)."""
        return not self.settings.is_default_prefix

    def panic_clock(self, key_prefix: str | None = None) -> PanicClock:
        return PanicClock(
            self.client,
            key_prefix=self.settings.key_prefix if key_prefix is None else key_prefix,
            panic_key_ttl_s=self.settings.panic_key_ttl_s,
        )

    def close(self) -> None:
        """Close the client; an embedded server belongs to the process and stops when it exits."""
        self.client.close()


SANDBOX_KEY_NAME = "sandbox"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def sandbox_key(key_prefix: str) -> str:
    return f"{key_prefix}{SANDBOX_KEY_NAME}"


def mark_sandbox(client: Any, key_prefix: str) -> None:
    """Say on the console's embedded server that it is a sandbox, so that the CLI pointed at it (its URL is in
    the sidebar) behaves as the console does there: writes open, no two-person rule."""
    client.set(sandbox_key(key_prefix), json.dumps({"pid": os.getpid(), "since": time.time()}))


def is_sandbox(client: Any, url: str, key_prefix: str) -> bool:
    """A loopback server the console marked as its embedded sandbox. Only on loopback: a marker key copied to
    a shared Redis does not turn it into a sandbox."""
    if urlsplit(url).scheme not in ("redis", "unix") or (
            urlsplit(url).scheme == "redis" and urlsplit(url).hostname not in LOOPBACK_HOSTS):
        return False
    try:
        return bool(client.exists(sandbox_key(key_prefix)))
    except Exception:
        return False


def refuse_cluster_node(client: Any, url: str) -> None:
    """ConfigError when a plain ``redis://`` / ``rediss://`` / ``unix://`` URL names a Redis Cluster node: a
    single-node client there gets MOVED or CROSSSLOT on every call, so workers would fail safe forever.

    One bounded round trip (``INFO cluster``, the client's timeout). A server that does not answer now is not a
    configuration error (the console shows it unreachable and keeps retrying), so nothing is raised then.
    """
    if is_cluster_url(url):
        return
    try:
        info = client.info("cluster")
    except Exception:
        return
    if str(info.get("cluster_enabled", 0)) == "1":
        raise ConfigError(f"REDIS_URL {redact_url(url)} names a Redis Cluster node: use redis+cluster://host:port "
                          "(or rediss+cluster://) so that every key goes to the node that owns its slot")


def connect_target(settings: Settings) -> Target:
    """Connect to ``settings.redis_url``, or to the process's embedded Valkey (started once) when it is unset.
    A URL the client refuses, or one naming a cluster node without a cluster scheme, raises ConfigError."""
    if settings.redis_url:
        try:
            client = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
        except (TypeError, ValueError) as exc:  # an option redis-py refuses: a setting, not a Redis error
            raise ConfigError(f"REDIS_URL {redact_url(settings.redis_url)}: {exc}") from None
        try:
            refuse_cluster_node(client, settings.redis_url)
        except ConfigError:
            client.close()
            raise
        return Target(client, settings.redis_url, embedded=False, settings=settings)
    from .embedded import shared_embedded_server

    server = shared_embedded_server()
    client = redis_client(server.connection_url, timeout_ms=max(settings.redis_timeout_ms, 250))
    with contextlib.suppress(Exception):  # a marker the CLI reads; the console itself knows it is embedded
        mark_sandbox(client, settings.key_prefix)
    return Target(client, server.connection_url, embedded=True, settings=settings, server=server)
