"""The Redis the console and CLI talk to: ``REDIS_URL``, or an embedded server started on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    return Target(client, server.connection_url, embedded=True, settings=settings, server=server)
