"""One deadline over a whole operator read, as the worker's round trip has one (issue 21, finding 11).

redis-py's socket timeout bounds each ``recv``, not a reply: a server or proxy that sends a byte every 10 ms
keeps a 1 s-timeout client reading for as long as it likes (a scrape took over 15 s, ``vix-breaker status``
over 40 s). ``breaker.redis_client``'s connections already read through ``breaker.wire.DeadlineSocket``,
whose reads stop at the deadline of the call running in the calling thread; ``operator_deadline`` sets that
deadline around any number of ordinary redis-py calls (a MULTI, HSCAN pages, HDELs), so the read as a whole
ends by then with redis-py's ``TimeoutError`` (and the connection, half read, is disconnected by redis-py).

Scope: clients built by ``breaker.redis_client`` for ``redis://`` and ``rediss://`` URLs. A cluster client or
a host's own ``redis.Redis`` keeps only its per-read timeouts. Sends are not bounded here (an operator read
sends a few hundred bytes).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from .. import wire

#: Default budget of one operator read in seconds (``BREAKER_OPERATOR_READ_TIMEOUT_S``): well above a healthy
#: read of a 10 000-field page (tens of ms), well below what an on-call operator or a scraper waits.
DEFAULT_OPERATOR_READ_S = 2.0


@contextlib.contextmanager
def operator_deadline(budget_s: float) -> Iterator[float]:
    """Every Redis read made by this thread inside the block ends ``budget_s`` from now (monotonic time), or
    earlier when an enclosing block's deadline comes first. Yields the deadline."""
    if not budget_s > 0:
        raise ValueError(f"an operator read needs a positive budget, got {budget_s!r}")
    previous = getattr(wire._deadline, "at", None)  # wire keeps the thread's deadline; nested blocks keep the first
    at = time.monotonic() + budget_s
    wire._deadline.at = at if previous is None else min(previous, at)
    try:
        yield wire._deadline.at
    finally:
        wire._deadline.at = previous


def time_left(deadline: float) -> float:
    """Seconds before ``deadline`` (never negative)."""
    return max(0.0, deadline - time.monotonic())
