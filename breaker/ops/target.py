"""The Redis the console and CLI talk to: ``REDIS_URL``, or an embedded server started on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..client import redact_url, redis_client
from ..clock import PanicClock
from ..config import Settings


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


def connect_target(settings: Settings) -> Target:
    """Connect to ``settings.redis_url``, or to the process's embedded Valkey (started once) when it is unset."""
    if settings.redis_url:
        client = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
        return Target(client, settings.redis_url, embedded=False, settings=settings)
    from .embedded import shared_embedded_server

    server = shared_embedded_server()
    client = redis_client(server.connection_url, timeout_ms=max(settings.redis_timeout_ms, 250))
    return Target(client, server.connection_url, embedded=True, settings=settings, server=server)
