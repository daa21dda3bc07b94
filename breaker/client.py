"""Building and describing Redis clients that cannot stall a worker.

redis-py 8 retries 10 times with backoff by default, which turns a 50 ms timeout
against a hung server into seconds; every client built here has retries off and
short connect/read timeouts, and the breaker adds its own back-off on top. The
host name lookup is bounded too: getaddrinfo has no timeout of its own.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import BlockingConnectionPool, Connection, SSLConnection, parse_url
from redis.exceptions import RedisClusterException, RedisError
from redis.retry import Retry

from .wire import DeadlineSocket

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SUPPORTED_SCHEMES = ("redis", "rediss", "unix", *CLUSTER_SCHEMES)
STALL_LIMIT_S = 0.1
#: Query parameters whose value is a secret (redis-py reads ?password= and ?ssl_password=).
_SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token", "auth")

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


def redis_client(url: str | None = None, *, timeout_ms: float = 50) -> Any:
    """A redis-py client for ``url`` (or ``REDIS_URL``); None when neither is set.

    ``redis+cluster://host:port[,host:port…]`` and ``rediss+cluster://…`` give a :class:`ClusterClient`
    (a redis-py ``RedisCluster`` built on first use). A malformed URL raises ``ValueError`` naming it.
    """
    source = "Redis URL"
    if url is None:
        url, source = os.environ.get("REDIS_URL") or None, "REDIS_URL"
    if not url:
        return None
    check_redis_url(url, source=source)
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float)) or not timeout_ms > 0:
        raise ValueError(f"timeout_ms must be a positive number of milliseconds, got {timeout_ms!r}")
    timeout_s = timeout_ms / 1000.0
    scheme = urlsplit(url).scheme
    if scheme in CLUSTER_SCHEMES:
        return ClusterClient(url, timeout_s)
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


def check_redis_url(url: str, *, source: str = "Redis URL") -> None:
    """Raise ``ValueError`` (naming ``source`` and the redacted URL) unless redis_client can build a client
    from ``url``: a known scheme, a host (or socket path), ports 1-65535, query options redis-py reads."""
    try:
        scheme = urlsplit(url).scheme
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}")
        if scheme in CLUSTER_SCHEMES:
            cluster_nodes(url)
            _cluster_options(url)
            return
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port outside 0-65535 or not a number
        if scheme != "unix" and not parts.hostname:
            raise ValueError("no host")
        if scheme != "unix" and parts.port == 0:
            raise ValueError("port 0")
        _check_connection_options(scheme, parse_url(url))
    except ValueError as exc:
        raise ValueError(f"{source} {redact_url(url)!r}: {exc}") from None


def _check_connection_options(scheme: str, options: dict[str, Any]) -> None:
    """redis-py's URL parser passes any query option it does not know through to the connection class, which
    refuses it only when the first connection is made (a ``TypeError`` at the first command: ``?ssl_password=``
    on a ``redis://`` URL, a typo). Build that connection object now (it does not connect) so that such a URL
    fails at configuration time, naming the option. TLS options on ``rediss://`` are the SSL connection's own
    (``ssl_cert_reqs=required|optional|none`` included); on ``redis://`` they are refused."""
    options = dict(options)
    options.pop("max_connections", None)  # the pool's, not the connection's
    connection_class = _CONNECTION_CLASS.get(scheme) or options.get("connection_class") or Connection
    options.pop("connection_class", None)
    try:
        connection_class(**options)
    except TypeError as exc:
        name = re.search(r"argument '([^']+)'", str(exc))
        option = name.group(1) if name else str(exc)
        hint = " (TLS options need rediss://)" if option.startswith("ssl") and scheme != "rediss" else ""
        raise ValueError(f"option {option!r} is not accepted by redis-py for a {scheme}:// URL{hint}") from None
    except (RedisError, ValueError) as exc:
        raise ValueError(f"a query option is invalid: {exc}") from None


def is_cluster_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The startup nodes of a ``redis+cluster://`` URL: ``host:port`` pairs separated by commas
    (port 6379 when left out; IPv6 addresses in brackets)."""
    hosts = urlsplit(url).netloc.rsplit("@", 1)[-1]
    nodes = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            continue
        node = urlsplit(f"//{item}")
        port = node.port  # raises ValueError: out of range or not a number
        if not node.hostname:
            raise ValueError(f"cluster node {item!r} has no host")
        if port == 0:
            raise ValueError(f"cluster node {item!r}: port 0")
        nodes.append((node.hostname, port or 6379))
    if not nodes:
        raise ValueError("a cluster URL needs at least one host:port")
    return nodes


def _cluster_options(url: str) -> dict[str, Any]:
    """Credentials, TLS and other query options of a cluster URL, parsed by redis-py's own URL parser."""
    parts = urlsplit(url)
    if parts.path not in ("", "/", "/0"):
        raise ValueError("a cluster has only database 0")
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    base = "rediss" if parts.scheme == "rediss+cluster" else "redis"
    options = parse_url(f"{base}://{userinfo}localhost" + (f"?{parts.query}" if parts.query else ""))
    if options.pop("db", 0) != 0:
        raise ValueError("a cluster has only database 0")
    for name in ("host", "port", "connection_class", "path"):
        options.pop(name, None)
    if base == "rediss":
        options["ssl"] = True
    return options


class ClusterClient:
    """A redis-py ``RedisCluster`` with a worker's timeouts and no retries, built on first use.

    ``RedisCluster()`` asks a node for the slot map while it is constructed and raises when none
    answers: building it lazily keeps a worker that starts during an outage fail-safe (the first
    call raises a ``ConnectionError``, which the breaker answers with PANIC_FULL, and the next try
    builds it). Every other attribute is the ``RedisCluster``'s (``pipeline``, ``get``, ...).
    """

    is_cluster = True

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.startup_nodes = cluster_nodes(url)
        # redis-py 8.1 builds its node clients with its own connection classes (no connection_class), so
        # a cluster's host names are looked up without our bound: name the nodes by address.
        self.connection_kwargs: dict[str, Any] = {
            **_cluster_options(url),
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
        }
        self._cluster: RedisCluster | None = None
        self._lock = threading.Lock()

    @property
    def cluster(self) -> RedisCluster:
        built = self._cluster
        if built is not None:
            return built
        with self._lock:
            if self._cluster is None:
                try:
                    self._cluster = RedisCluster(
                        startup_nodes=[ClusterNode(host, port) for host, port in self.startup_nodes],
                        retry=Retry(NoBackoff(), 0),  # the breaker backs off; the cluster client must not retry
                        reinitialize_steps=1,  # refresh the slot map after every failure: failover ends sooner
                        **self.connection_kwargs,
                    )
                except RedisClusterException as exc:
                    raise redis.exceptions.ConnectionError(f"no cluster node answered: {exc}") from exc
            return self._cluster

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_cluster", "_lock", "connection_pool"):
            raise AttributeError(name)  # introspection (stall_risks, pickling) must not connect
        if self._cluster is None and callable(getattr(RedisCluster, name, None)):
            # a method, looked up (``callable(getattr(client, "evalsha", None))``) before any call:
            # hand back one that builds the cluster when called, so constructing a breaker never connects
            def deferred(*args: Any, **kwargs: Any) -> Any:
                return getattr(self.cluster, name)(*args, **kwargs)

            deferred.__name__ = name
            return deferred
        return getattr(self.cluster, name)

    def close(self) -> None:
        built, self._cluster = self._cluster, None
        if built is not None:
            built.close()

    def __repr__(self) -> str:
        return f"ClusterClient({redact_url(self.url)!r})"


def is_cluster_client(client: Any) -> bool:
    """True for a Redis Cluster client: its transactions must stay in one hash slot."""
    return isinstance(client, (ClusterClient, RedisCluster))


def redact_url(url: str | None) -> str:
    """The URL with any password (user info, ``?password=``, ``?ssl_password=``...) replaced by ``***``."""
    if not url:
        return "(none)"
    try:
        parts = urlsplit(url)
        if "@" in parts.netloc and parts.password is not None:
            userinfo, hosts = parts.netloc.rsplit("@", 1)
            parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hosts}")
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            query = [(k, "***" if any(w in k.lower() for w in _SECRET_WORDS) else v) for k, v in pairs]
            parts = parts._replace(query=urlencode(query, safe="*"))
        return parts.geturl()
    except ValueError:
        return "(a URL that does not parse)"


def describe_client(client: Any) -> str:
    """``host:port/db`` (or the socket path) of a client, without credentials."""
    if isinstance(client, ClusterClient):
        return redact_url(client.url)
    if isinstance(client, RedisCluster):
        nodes = ",".join(node.name for node in client.get_nodes()[:6])
        return f"redis+cluster://{nodes}"
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
    if isinstance(client, (ClusterClient, RedisCluster)):
        return _cluster_stall_risks(client)
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return []
    if getattr(client.connection_pool, "connection_class", type).__module__.startswith("fakeredis"):
        return []  # an in-process fake (unit tests): no socket, nothing to wait on
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


def _cluster_stall_risks(client: ClusterClient | RedisCluster) -> list[str]:
    """A cluster client's timeouts (shared by its nodes) and its own retries (``retry``, which redis-py 8
    also fills from ``cluster_error_retry_attempts``, 10 by default)."""
    if isinstance(client, ClusterClient):
        kwargs, retries = client.connection_kwargs, 0
    else:
        kwargs, retries = client.nodes_manager.connection_kwargs, client.retry.get_retries()
    risks = []
    for name in ("socket_timeout", "socket_connect_timeout"):
        value = kwargs.get(name)
        if value is None or value > STALL_LIMIT_S:
            risks.append(f"{name}={value!r} (no bound)" if value is None else f"{name}={value!r}s")
    if retries:
        risks.append(f"retry={retries} retries (cluster_error_retry_attempts)")
    return risks
