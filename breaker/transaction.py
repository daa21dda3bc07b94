"""One MULTI/EXEC round trip packed by hand, for the panic observation (the only hot Redis call).

redis-py's pipeline spends most of a loopback round trip in Python: a command object per
command, each argument encoded and packed, a callback per reply. The observation always
sends the same commands with one changing value, so it is packed here and its replies are
read as they come, with redis-py's own connection, parser, timeouts and errors. Only a
plain ``redis.Redis`` on a standard pool takes this path; a wrapper, a cluster client or
fakeredis gets the ordinary pipeline.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.connection import BlockingConnectionPool, ConnectionPool

MULTI = b"*1\r\n$5\r\nMULTI\r\n"
EXEC = b"*1\r\n$4\r\nEXEC\r\n"


def can_pack_by_hand(client: Any) -> bool:
    return type(client) is redis.Redis and type(client.connection_pool) in (ConnectionPool, BlockingConnectionPool)


def pack(*args: bytes) -> bytes:
    """One command in the Redis protocol (RESP), arguments already bytes."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)


def execute_transaction(client: redis.Redis, commands: bytes, queued: int) -> list[Any]:
    """Send ``MULTI``, the ``queued`` packed ``commands`` and ``EXEC``; return EXEC's reply.

    A command that fails inside the transaction comes back as a ``ResponseError`` value, as
    with ``pipeline.execute(raise_on_error=False)``; anything else raises. A connection that
    failed mid-reply is closed, never handed back with replies still unread.
    """
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command([MULTI + commands + EXEC])
        for _ in range(queued + 1):  # +OK for MULTI, +QUEUED per command
            connection.read_response()
        return connection.read_response()
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
