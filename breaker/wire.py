"""One command on a redis-py connection, its whole reply read against one deadline.

redis-py's socket timeout bounds each read, not a reply: a server or proxy that sends a byte every 40 ms
holds a 50 ms-timeout client for as long as it likes, and a 64 MB value takes as long as it takes. The
breaker's round trip goes through here instead: the command is packed by hand, sent on a connection of the
client's own pool (its connect timeout, TLS and AUTH as configured), and the reply is read from the socket
with the time left before the deadline and at most ``max_reply_bytes``. A connection that missed its
deadline is closed, never handed back with a reply half read. Only a plain ``redis.Redis`` on a standard
pool takes this path; a wrapper, a cluster client or fakeredis is called the ordinary way.
"""

from __future__ import annotations

import threading
import time
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
    _deadline.at = deadline
    try:
        connection = pool.get_connection()  # a new connection's handshake reads against the deadline too
    except TimeoutError:
        raise RedisTimeoutError("connection handshake not complete within the deadline") from None
    finally:
        _deadline.at = None
    try:
        connection.send_packed_command([command], check_health=False)
        reply = _read(connection, deadline, max_reply_bytes)
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
    if isinstance(reply, ResponseError):
        raise reply
    return reply


def _read(connection: Any, deadline: float, max_reply_bytes: int) -> Any:
    sock = connection._sock
    buffer = bytearray()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RedisTimeoutError(f"reply not complete within the deadline ({len(buffer)} bytes read)")
            sock.settimeout(left)
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                raise RedisTimeoutError(f"reply not complete within the deadline ({len(buffer)} bytes read)") \
                    from None
            if not chunk:
                raise redis.exceptions.ConnectionError("connection closed by the server mid-reply")
            buffer += chunk
            if len(buffer) > max_reply_bytes:
                raise DataError(f"reply longer than {max_reply_bytes} bytes")
            try:
                reply, end = _parse(buffer, 0)
            except _Incomplete:
                continue
            if end != len(buffer):
                raise redis.exceptions.ConnectionError("more bytes than one reply: connection out of step")
            return reply
    finally:
        if connection._sock is not None:
            connection._sock.settimeout(connection.socket_timeout)


def _line(buffer: bytearray, pos: int) -> tuple[bytes, int]:
    end = buffer.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    return bytes(buffer[pos:end]), end + 2


def _error(message: str) -> ResponseError:
    """The exception redis-py raises for this error reply (OOM, READONLY, NOSCRIPT, NOPERM...)."""
    return BaseParser.parse_error(message)


def _parse(buffer: bytearray, pos: int) -> tuple[Any, int]:
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
