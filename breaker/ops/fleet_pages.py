"""The per-worker list in pages (issue 24): a server-side cursor, a host or id search, a state filter, a host view.

``read_fleet`` answers "how is the fleet" from at most ``READ_MAX_FIELDS`` fields; a list of 100 000 workers is
read here instead, one HSCAN page (``COUNT PAGE_FIELDS``, with ``MATCH`` for a host or an id search) per round
trip, each page within its own operator-read deadline, so a caller streams the list without ever holding it
or blocking the server for more than one page. HSCAN's guarantees hold: a worker present for the whole walk is
listed, a worker that came or went during it may or may not be; ``iter_workers`` drops the repeats a rehash
can cause. Worker ids are ``host:pid:<4 hex>`` (``heartbeat.new_worker_id``), so a host search is
``MATCH <host>:*``, done by the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..clock import PanicClock, server_time
from ..heartbeat import STATES, WorkerBeat
from ..keyspace import queue_time
from .fleet import PAGE_FIELDS, judge_field, scan_reply, workers_key
from .read_deadline import DEFAULT_OPERATOR_READ_S, operator_deadline

#: Fields the host view reads at most (100 pages): a larger hash is summarised in part (``HostView.complete``).
HOST_VIEW_MAX_FIELDS = 100_000
_GLOB_SPECIAL = "\\*?[]"


@dataclass(frozen=True)
class FleetPage:
    """One HSCAN page: the beats in it that pass the filters, and the cursor to pass for the next (0: done)."""

    now: float
    workers: list[WorkerBeat]
    cursor: int
    scanned: int  # fields the page held, filtered or not
    invalid: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostView:
    """Workers grouped by host: per host, how many are in each state."""

    now: float
    hosts: dict[str, dict[str, int]]
    scanned: int
    complete: bool
    invalid: int


def glob_escape(text: str) -> str:
    """``text`` as a literal in a MATCH pattern."""
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)


def match_pattern(*, host: str | None = None, search: str | None = None) -> str | None:
    """The MATCH pattern for a host (ids starting ``host:``) and/or a search text anywhere in the id."""
    if host is not None and search is not None:
        return f"{glob_escape(host)}:*{glob_escape(search)}*"
    if host is not None:
        return f"{glob_escape(host)}:*"
    if search is not None:
        return f"*{glob_escape(search)}*"
    return None


def _check_states(states: Iterable[str] | None) -> frozenset[str] | None:
    if states is None:
        return None
    wanted = frozenset(states)
    unknown = wanted - set(STATES)
    if unknown:
        raise ValueError(f"unknown state(s) {sorted(unknown)}; states are {', '.join(STATES)}")
    return wanted


def read_page(clock: PanicClock, *, cursor: int = 0, count: int = PAGE_FIELDS, host: str | None = None,
              search: str | None = None, states: Iterable[str] | None = None,
              deadline_s: float = DEFAULT_OPERATOR_READ_S) -> FleetPage:
    """One page of the workers hash from ``cursor`` (TIME and HSCAN in one MULTI), filtered by host, id search
    and state. A page may hold no match and still a non-zero cursor: keep going until the cursor is 0."""
    wanted = _check_states(states)
    with operator_deadline(deadline_s):
        pipe = clock.client.pipeline(transaction=True)
        queue_time(pipe, clock.start_key)
        pipe.hscan(workers_key(clock), cursor, match=match_pattern(host=host, search=search), count=count)
        time_reply, page = pipe.execute()
    next_cursor, fields = scan_reply(page)
    now = server_time(time_reply)
    workers: list[WorkerBeat] = []
    invalid: dict[str, str] = {}
    for name, raw in fields.items():
        beat, why_invalid, _ = judge_field(name, raw, now)
        if beat is None:
            invalid[_text(name)] = why_invalid or ""
        elif wanted is None or beat.state in wanted:
            workers.append(beat)
    return FleetPage(now=now, workers=workers, cursor=int(next_cursor), scanned=len(fields), invalid=invalid)


def iter_workers(clock: PanicClock, *, limit: int | None = None, host: str | None = None, search: str | None = None,
                 states: Iterable[str] | None = None, count: int = PAGE_FIELDS,
                 deadline_s: float = DEFAULT_OPERATOR_READ_S) -> Iterator[WorkerBeat]:
    """Every worker passing the filters, page by page (each page its own deadline), at most ``limit``."""
    wanted = _check_states(states)
    seen: set[str] = set()
    cursor = 0
    while limit is None or len(seen) < limit:
        page = read_page(clock, cursor=cursor, count=count, host=host, search=search, states=wanted,
                         deadline_s=deadline_s)
        for beat in page.workers:
            if beat.worker_id not in seen:
                seen.add(beat.worker_id)
                yield beat
                if limit is not None and len(seen) >= limit:
                    return
        cursor = page.cursor
        if cursor == 0:
            return


def read_hosts(clock: PanicClock, *, max_fields: int = HOST_VIEW_MAX_FIELDS, host: str | None = None,
               count: int = PAGE_FIELDS, deadline_s: float = DEFAULT_OPERATOR_READ_S) -> HostView:
    """Counts per state for each host, from at most ``max_fields`` fields read page by page."""
    hosts: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    cursor, scanned, invalid, now = 0, 0, 0, 0.0
    while True:
        page = read_page(clock, cursor=cursor, count=count, host=host, deadline_s=deadline_s)
        now, cursor, scanned, invalid = page.now, page.cursor, scanned + page.scanned, invalid + len(page.invalid)
        for beat in page.workers:
            if beat.worker_id in seen:
                continue
            seen.add(beat.worker_id)
            per_state = hosts.setdefault(beat.host or beat.worker_id.split(":", 1)[0], dict.fromkeys(STATES, 0))
            per_state[beat.state] += 1
        if cursor == 0 or scanned >= max_fields:
            break
    return HostView(now=now, hosts=dict(sorted(hosts.items())), scanned=scanned, complete=cursor == 0,
                    invalid=invalid)


def _text(name: Any) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
