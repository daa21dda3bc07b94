"""A write and its audit entry in one MULTI/EXEC: both land, or neither does (SPEC section 8).

MULTI does not roll back: a command that fails inside EXEC leaves the others applied. So the
audit key is WATCHed and its type checked before MULTI (XADD cannot then meet a wrong type
inside EXEC), and the XADD is queued first; a command the server refuses while queueing (ACL,
out of memory) makes EXEC abort the whole transaction. A key the caller WATCHes too (the clock)
makes a concurrent change retry the decision instead of overwriting it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from redis.exceptions import ResponseError, WatchError

from .audit import AuditTrail

T = TypeVar("T")
#: How long a write keeps retrying when a WATCHed key changes. The audit stream is WATCHed, so every concurrent
#: XADD (a fleet's state-change listeners at a tier change: hundreds a second) spoils an attempt; a handful of
#: attempts made in a millisecond would fail exactly when operators act.
RETRY_BUDGET_S = 2.0


def attempts(budget_s: float = RETRY_BUDGET_S) -> Iterator[int]:
    """Attempt numbers for an optimistic (WATCH) transaction: as many as fit in ``budget_s``, with a short random
    pause between them so that operators writing at once do not keep spoiling each other's attempts."""
    deadline = time.monotonic() + budget_s
    attempt = 0
    while True:
        yield attempt
        attempt += 1
        if time.monotonic() >= deadline:
            return
        time.sleep(random.uniform(0.0, min(0.0005 * attempt, 0.01)))


@dataclass(frozen=True)
class Planned(Generic[T]):
    """What a write decided after reading: its audit entry, the commands to queue, and what to return."""

    entry: dict[str, Any]
    queue: Callable[[Any], None]
    result: T


class AuditUnavailable(ResponseError):
    """The audit stream cannot take an entry (its key holds another type): nothing was written."""


def audited_write(
    client: Any, trail: AuditTrail, *, watch: Sequence[str], plan: Callable[[Any], Planned[T] | T]
) -> T:
    """WATCH ``watch`` and the audit key, let ``plan(pipe)`` read and decide, then commit entry and write.

    ``plan`` returns a ``Planned`` to write, or any other value to write nothing and return it.
    """
    for _ in attempts():
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(trail.key, *watch)
                kind = pipe.type(trail.key)
                kind = kind.decode() if isinstance(kind, bytes) else kind
                if kind not in ("none", "stream"):
                    raise AuditUnavailable(f"WRONGTYPE {trail.key} holds a {kind}, not a stream: nothing written")
                planned = plan(pipe)
                if not isinstance(planned, Planned):
                    return planned
                pipe.multi()
                trail.record_in(pipe, **planned.entry)
                planned.queue(pipe)
                pipe.execute()
                return planned.result
            except WatchError:
                continue
    raise RuntimeError(f"{', '.join(watch)}: changed by others for {RETRY_BUDGET_S:g} s of attempts; nothing written")
