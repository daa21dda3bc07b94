"""One command on a redis-py connection, its whole reply read against one deadline.

redis-py's socket timeout bounds each read, not a reply: a server or proxy that sends a byte every 40 ms
holds a 50 ms-timeout client for as long as it likes, and a 64 MB value takes as long as it takes. The
breaker's round trip goes through here instead: the command is packed by hand, sent on a connection of the
client's own pool (its connect timeout, TLS and AUTH as configured), and the reply is read from the socket
with the time left before the deadline and at most ``max_reply_bytes``. A connection that missed its
deadline is closed, never handed back with a reply half read. Only a plain ``redis.Redis`` on a standard
pool takes this path; a wrapper, a cluster client or fakeredis is called the ordinary way.

A worker's clock goes one step further (``Lane``): it keeps one pooled connection between its round trips, so
a round trip is one ``sendall`` and usually one ``recv``, without the pool's per-call checkout, health-check
read and release (at ``refresh_interval_s=0`` that overhead was about as long as the server's work).
"""

from __future__ import annotations

import os
import select
import threading
import time
import weakref
from typing import Any

import redis
from redis._parsers import BaseParser
from redis.connection import BlockingConnectionPool, ConnectionPool
from redis.exceptions import DataError, ResponseError
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

MAX_REPLY_BYTES = 16384
_deadline = threading.local()  # the monotonic deadline of the wire.call running in this thread, if any


class DeadlineSocket:
    """A connected socket whose reads stop at the deadline of the ``wire.call`` running in the calling thread.

    Outside such a call it is the socket itself. ``breaker.redis_client``'s connections wrap their socket in one
    before the handshake (AUTH, HELLO, CLIENT SETINFO), so a new connection made inside a round trip, e.g. the
    first after a failure, is bounded too; a host's own connection class keeps per-read timeouts there.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._timeout = sock.gettimeout()

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout
        self._sock.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._timeout

    def _bounded(self, read: Any, *args: Any) -> Any:
        at = getattr(_deadline, "at", None)
        if at is None:
            return read(*args)
        left = at - time.monotonic()
        if left <= 0:
            raise TimeoutError("round-trip deadline passed")
        self._sock.settimeout(left if self._timeout is None else min(left, self._timeout))
        try:
            return read(*args)
        finally:
            self._sock.settimeout(self._timeout)

    def recv(self, *args: Any) -> bytes:
        return self._bounded(self._sock.recv, *args)

    def recv_into(self, *args: Any) -> int:
        return self._bounded(self._sock.recv_into, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Incomplete(Exception):
    """The buffer holds only part of a reply."""


def can_bound(client: Any) -> bool:
    """Whether ``call`` can take this client's connections (a plain client on a standard pool)."""
    return type(client) is redis.Redis and type(client.connection_pool) in (ConnectionPool, BlockingConnectionPool)


def can_keep(client: Any) -> bool:
    """Whether a ``Lane`` may keep one of this client's connections: a plain client on an unbounded-style
    ``ConnectionPool`` (not a ``BlockingConnectionPool``, whose few connections the host shares out), without
    client-side caching (its invalidations arrive on the connection) or a credential provider (it re-auths
    connections as they are released)."""
    pool = getattr(client, "connection_pool", None)
    return (
        can_bound(client)
        and type(pool) is ConnectionPool
        and getattr(pool, "cache", None) is None
        and pool.connection_kwargs.get("credential_provider") is None
    )


def pack(*args: bytes) -> bytes:
    """One command in the Redis protocol (RESP), arguments already bytes."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)


def timeout_s(client: Any, default: float = 0.05) -> float:
    """The client's read timeout: the budget of a whole call."""
    value = client.connection_pool.connection_kwargs.get("socket_timeout")
    return float(value) if value else default


def call(client: redis.Redis, command: bytes, *, budget_s: float, max_reply_bytes: int = MAX_REPLY_BYTES) -> Any:
    """Send one packed ``command``; return its reply (bytes, ints, lists, None) within ``budget_s`` in total.

    Raises redis-py's ``TimeoutError`` when the reply is not complete by then, ``DataError`` when it is larger
    than ``max_reply_bytes``, ``ResponseError`` (or its subclasses) for an error reply.
    """
    deadline = time.monotonic() + budget_s
    pool = client.connection_pool
    connection = _checkout(pool, deadline)
    try:
        reply = _exchange(connection, command, deadline, max_reply_bytes)
    except BaseException:
        connection.disconnect()
        raise
    finally:
        _restore_timeout(connection)
        pool.release(connection)
    if isinstance(reply, ResponseError):
        raise reply
    return reply


class Lane:
    """One connection of the client's pool kept between calls: the worker's round trip without a checkout.

    A checkout costs a lock, a health-check read and the pool's bookkeeping on every call; a worker with
    ``refresh_interval_s=0`` makes one round trip per panic call. The lane checks its connection out once
    (through the pool, so TLS, AUTH and the deadline-bounded handshake are the pool's) and keeps it. Before
    each use it polls the socket without waiting: a connection the server closed, or one with unread bytes,
    is dropped and a fresh one checked out, as the pool's own check would. A call that fails in any way
    disconnects the connection and hands it back, so a half-read reply is never reused. One thread at a time
    uses the lane; another thread calling meanwhile takes the ordinary per-call checkout. In a forked child
    the parent's connection is left alone; after ``client.close()`` (which disconnects checked-out
    connections too) the next call checks out anew. The connection goes back to the pool when the lane is
    garbage collected or ``close()``d.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._held: list[Any] = [None, None, None]  # connection, its socket, a poll object on it
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(self, _give_back, client.connection_pool, self._held)

    def call(self, command: bytes, *, budget_s: float, max_reply_bytes: int = MAX_REPLY_BYTES) -> Any:
        """``wire.call`` on the kept connection (same deadline, limits and errors)."""
        if not self._lock.acquire(blocking=False):
            return call(self.client, command, budget_s=budget_s, max_reply_bytes=max_reply_bytes)
        try:
            deadline = time.monotonic() + budget_s
            connection = self._ready()
            if connection is None:
                connection = _checkout(self.client.connection_pool, deadline)
                self._keep(connection)
            try:
                reply = _exchange(connection, command, deadline, max_reply_bytes)
            except BaseException:
                self._drop(disconnect=True)
                raise
        finally:
            self._lock.release()
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def after_fork(self) -> None:
        """In a forked child: forget the parent's connection (its socket is the parent's) and the lock, which
        the parent's thread may have held at the fork; the next call checks out from the child's own pool."""
        self._lock = threading.Lock()
        self._held[:] = [None, None, None]
        self._pid = os.getpid()

    def close(self) -> None:
        """Hand the kept connection back to the pool (the next call checks one out again)."""
        with self._lock:
            self._drop(disconnect=False)

    def _ready(self) -> Any:
        """The kept connection when it can take a command now; else None (and it is handed back)."""
        connection, sock, poller = self._held
        if connection is None:
            return None
        if self._pid != os.getpid():  # a forked child: the socket is the parent's, the pool resets itself
            self._held[:] = [None, None, None]
            self._pid = os.getpid()
            return None
        if connection._sock is not sock or poller.poll(0):  # closed (client.close()), or readable: EOF or stray data
            self._drop(disconnect=True)
            return None
        return connection

    def _keep(self, connection: Any) -> None:
        poller = select.poll()
        poller.register(connection._sock.fileno(), select.POLLIN)
        self._held[:] = [connection, connection._sock, poller]

    def _drop(self, *, disconnect: bool) -> None:
        connection = self._held[0]
        self._held[:] = [None, None, None]
        if connection is not None:
            if disconnect:
                connection.disconnect()
            else:
                _restore_timeout(connection)
            self.client.connection_pool.release(connection)


def _give_back(pool: Any, held: list[Any]) -> None:
    """A collected lane's connection goes back to its pool (in the process that checked it out)."""
    connection = held[0]
    held[:] = [None, None, None]
    if connection is not None and connection.pid == os.getpid():
        _restore_timeout(connection)
        pool.release(connection)


def _checkout(pool: Any, deadline: float) -> Any:
    _deadline.at = deadline
    try:
        return pool.get_connection()  # a new connection's handshake reads against the deadline too
    except TimeoutError:
        raise RedisTimeoutError("connection handshake not complete within the deadline") from None
    finally:
        _deadline.at = None


def _restore_timeout(connection: Any) -> None:
    if connection._sock is not None:
        connection._sock.settimeout(connection.socket_timeout)


def _exchange(connection: Any, command: bytes, deadline: float, max_reply_bytes: int) -> Any:
    """Send ``command`` and read one reply, both against ``deadline``; the socket's timeout is left at
    whatever the last read needed (callers restore it before the connection serves anyone else)."""
    wrapper = connection._sock
    if wrapper is None:  # closed by another thread (client.close()) since the checkout
        raise redis.exceptions.ConnectionError("connection closed before the command was sent")
    sock = getattr(wrapper, "_sock", wrapper) if type(wrapper) is DeadlineSocket else wrapper
    left = deadline - time.monotonic()
    if left <= 0:
        raise RedisTimeoutError("round-trip deadline passed before the command was sent")
    sock.settimeout(left)
    try:
        sock.sendall(command)
    except TimeoutError:
        raise RedisTimeoutError("command not sent within the deadline") from None
    except OSError as exc:
        raise redis.exceptions.ConnectionError(f"error while sending: {exc}") from None
    return _read(sock, deadline, max_reply_bytes)


def _read(sock: Any, deadline: float, max_reply_bytes: int) -> Any:
    """One reply from ``sock`` (its timeout already set to the time left): the first chunk usually holds it."""
    buffer = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            raise RedisTimeoutError(f"reply not complete within the deadline ({len(buffer)} bytes read)") from None
        except OSError as exc:
            raise redis.exceptions.ConnectionError(f"error while reading: {exc}") from None
        if not chunk:
            raise redis.exceptions.ConnectionError("connection closed by the server mid-reply")
        buffer += chunk
        if len(buffer) > max_reply_bytes:
            raise DataError(f"reply longer than {max_reply_bytes} bytes")
        try:
            return _parse_flat(buffer)
        except (_Unusual, IndexError, ValueError):
            pass
        try:
            reply, end = _parse(buffer, 0)
        except _Incomplete:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RedisTimeoutError(f"reply not complete within the deadline ({len(buffer)} bytes read)") \
                    from None
            sock.settimeout(left)
            continue
        if end != len(buffer):
            raise redis.exceptions.ConnectionError("more bytes than one reply: connection out of step")
        return reply


class _Unusual(Exception):
    """Not a complete flat array of strings, integers and nulls: the general parser decides."""


def _parse_flat(data: bytes) -> list[Any]:
    """The common reply, a complete flat array of strings, integers and nulls, in one ``split``.

    Anything else (a string holding CRLF, a nested array, an error, an incomplete or over-long buffer) raises
    ``_Unusual``, ``IndexError`` or ``ValueError`` and goes to ``_parse``, which reads every shape.
    """
    parts = data.split(b"\r\n")
    if parts[-1] or parts[0][:1] != b"*":
        raise _Unusual
    count = int(parts[0][1:])
    if count < 0:
        raise _Unusual
    items: list[Any] = []
    at = 1
    for _ in range(count):
        token = parts[at]
        kind = token[:1]
        if kind == b"$":
            size = int(token[1:])
            if size < 0:
                items.append(None)
                at += 1
                continue
            value = parts[at + 1]
            if len(value) != size:
                raise _Unusual
            items.append(value)
            at += 2
        elif kind == b":":
            items.append(int(token[1:]))
            at += 1
        elif token == b"_":
            items.append(None)
            at += 1
        else:
            raise _Unusual
    if at != len(parts) - 1:
        raise _Unusual
    return items


def _line(buffer: bytes, pos: int) -> tuple[bytes, int]:
    end = buffer.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    return bytes(buffer[pos:end]), end + 2


def _error(message: str) -> ResponseError:
    """The exception redis-py raises for this error reply (OOM, READONLY, NOSCRIPT, NOPERM...)."""
    return BaseParser.parse_error(message)


def _parse(buffer: bytes, pos: int) -> tuple[Any, int]:
    """One RESP2/RESP3 value starting at ``pos``: (value, position after it)."""
    if pos >= len(buffer):
        raise _Incomplete
    kind = buffer[pos : pos + 1]
    line, pos = _line(buffer, pos + 1)
    if kind == b"+":
        return line, pos
    if kind in (b"-", b"!"):
        if kind == b"!":  # RESP3 blob error: length, then the message
            end = pos + int(line)
            if len(buffer) < end + 2:
                raise _Incomplete
            line, pos = bytes(buffer[pos:end]), end + 2
        return _error(line.decode("utf-8", "replace")), pos
    if kind == b":":
        return int(line), pos
    if kind == b",":
        return float(line), pos
    if kind == b"#":
        return line == b"t", pos
    if kind == b"_":
        return None, pos
    if kind in (b"$", b"="):
        size = int(line)
        if size < 0:
            return None, pos
        if len(buffer) < pos + size + 2:
            raise _Incomplete
        return bytes(buffer[pos : pos + size]), pos + size + 2
    if kind in (b"*", b"~", b">", b"%"):
        count = int(line)
        if count < 0:
            return None, pos
        if kind == b"%":
            count *= 2
        items = []
        for _ in range(count):
            item, pos = _parse(buffer, pos)
            items.append(item)
        return items, pos
    raise redis.exceptions.ConnectionError(f"unexpected reply type {kind!r}")
