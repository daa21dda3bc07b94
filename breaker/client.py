"""Building and describing Redis clients that cannot stall a worker.

redis-py 8 retries 10 times with backoff by default, which turns a 50 ms timeout
against a hung server into seconds; every client built here has retries off and
short connect/read timeouts, and the breaker adds its own back-off on top. The
host name lookup is bounded too: getaddrinfo has no timeout of its own.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.connection import BlockingConnectionPool, Connection, SSLConnection
from redis.retry import Retry

from .wire import DeadlineSocket

SUPPORTED_SCHEMES = ("redis", "rediss", "unix")
STALL_LIMIT_S = 0.1

class _NameLookups:
    """getaddrinfo in background threads, at most one lookup in flight per name.

    A caller that gives up leaves its lookup running; the next caller for that name waits on the same
    one instead of queueing another, so a resolver that stays dead for hours piles nothing up.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="redis-name-lookup")
        self._in_flight: dict[tuple, Future] = {}
        self._lock = threading.Lock()

    def lookup(self, host: str, port: int, socket_type: int, timeout_s: float) -> list:
        key = (host, port, socket_type)
        with self._lock:
            future = self._in_flight.get(key)
            if future is None or future.done():
                future = self._in_flight[key] = self._pool.submit(
                    socket.getaddrinfo, host, port, socket_type, socket.SOCK_STREAM
                )
        return future.result(timeout=timeout_s)


_lookups: _NameLookups | None = None


def _name_lookups() -> _NameLookups:
    """This process's lookups: a child forked by a pre-fork server inherits the parent's pool without its
    threads, and lookups queued there would never run."""
    global _lookups
    lookups = _lookups
    if lookups is None or lookups.pid != os.getpid():
        lookups = _lookups = _NameLookups()
    return lookups


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class BoundedLookupConnection(Connection):
    """A TCP connection whose host name lookup waits at most ``socket_connect_timeout``.

    Without this, a resolver that does not answer holds a worker for the resolver's own
    timeouts (5 s and more per lookup), whatever the socket timeouts say.
    """

    def _connect(self):
        host, limit = self.host, self.socket_connect_timeout
        if limit is None or _is_ip(host):
            return super()._connect()
        try:
            infos = _name_lookups().lookup(host, self.port, self.socket_type, limit)
        except TimeoutError:
            raise socket.gaierror(socket.EAI_AGAIN, f"name lookup took longer than {limit * 1000:.0f} ms") from None
        error: OSError = socket.gaierror(socket.EAI_NONAME, "name lookup returned no address")
        for address in dict.fromkeys(info[4][0] for info in infos):
            self.host = address  # connect to the address found; messages and TLS keep the name
            try:
                return super()._connect()
            except OSError as exc:
                error = exc
            finally:
                self.host = host
        raise error


    def on_connect_check_health(self, check_health: bool = True) -> None:
        """The handshake reads through a :class:`breaker.wire.DeadlineSocket`: inside a round trip they stop at
        its deadline, so a server that trickles its replies cannot stretch a reconnect either."""
        if not isinstance(self._sock, DeadlineSocket):
            self._sock = DeadlineSocket(self._sock)
        super().on_connect_check_health(check_health)


class BoundedLookupSSLConnection(SSLConnection, BoundedLookupConnection):
    """TLS over a :class:`BoundedLookupConnection` (the handshake checks the name, not the address)."""


_CONNECTION_CLASS = {"redis": BoundedLookupConnection, "rediss": BoundedLookupSSLConnection}


def redis_client(url: str | None = None, *, timeout_ms: float = 50) -> redis.Redis | None:
    """A redis-py client for ``url`` (or ``REDIS_URL``); None when neither is set."""
    if url is None:
        url = os.environ.get("REDIS_URL") or None
    if not url:
        return None
    scheme = urlsplit(url).scheme
    if scheme not in SUPPORTED_SCHEMES:
        raise ValueError(f"Redis URL {redact_url(url)!r}: scheme must be one of {', '.join(SUPPORTED_SCHEMES)}")
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)) or not timeout_ms > 0:
        raise ValueError(f"timeout_ms must be a positive number of milliseconds, got {timeout_ms!r}")
    timeout_s = timeout_ms / 1000.0
    bounded = {"connection_class": _CONNECTION_CLASS[scheme]} if scheme in _CONNECTION_CLASS else {}
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
        health_check_interval=0,
        **bounded,
    )


def redact_url(url: str | None) -> str:
    """The URL with any password replaced by ``***``: safe for screens and logs."""
    if not url:
        return "(none)"
    parts = urlsplit(url)
    if parts.password is not None:
        netloc = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{netloc}")
    if parts.query:  # redis-py also reads ?password=... from the query string
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, "***" if k.lower() == "password" else v) for k, v in pairs]
        parts = parts._replace(query=urlencode(query, safe="*"))
    return parts.geturl()


def describe_client(client: Any) -> str:
    """``host:port/db`` (or the socket path) of a client, without credentials."""
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return type(client).__name__
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    scheme = "rediss" if "SSL" in getattr(client.connection_pool, "connection_class", type).__name__ else "redis"
    return f"{scheme}://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def stall_risks(client: Any) -> list[str]:
    """Settings of a client that can make a call wait longer than ``STALL_LIMIT_S``."""
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return []
    risks = []
    for name in ("socket_timeout", "socket_connect_timeout"):
        if name in kwargs or "host" in kwargs or "path" in kwargs:
            value = kwargs.get(name)
            if value is None or value > STALL_LIMIT_S:
                risks.append(f"{name}={value!r} (no bound)" if value is None else f"{name}={value!r}s")
    retry = kwargs.get("retry")
    retries = retry.get_retries() if retry is not None else 0
    if retries:
        risks.append(f"retry={retries} retries")
    if isinstance(client.connection_pool, BlockingConnectionPool):  # waits for a free connection
        wait = client.connection_pool.timeout
        if wait is None or wait > STALL_LIMIT_S:
            risks.append(f"BlockingConnectionPool timeout={wait!r}s")
    return risks
