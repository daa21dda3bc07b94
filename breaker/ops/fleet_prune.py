"""Bounded pruning of the workers hash: dead, garbage and future-dated fields go, a bounded number per read.

Live beats expire on their own where the server has per-field expiry (HEXPIRE, Redis 7.4+/Valkey 9); what
does not expire is what a worker did not write that way: beats from servers without HEXPIRE, fields written
by hand or by a bug, beats ``seen`` in the future (a clock that jumped back after a failover). Each reader
deletes, among the fields it reads anyway, those a reader can never show as a live worker; when the hash is
larger than one read takes (``fleet.READ_MAX_FIELDS``), the read also walks ``PRUNE_WALK_FIELDS`` more fields
from a cursor remembered in ``{prefix}workers_prune_cursor``, so that garbage anywhere in the hash is reached
after (hash size / PRUNE_WALK_FIELDS) reads, never all in one read. Every server command here touches at most
``PRUNE_BATCH`` fields (HSCAN COUNT and HDEL arguments), so none blocks the server for more than about a
millisecond.

A field is removed when it is (see ``prune_reason``): gone (unseen for longer than ``gone_after_s`` of its
interval), ``seen`` more than ``FUTURE_SLACK_S`` ahead of the server, or not a heartbeat at all (not JSON, not
an object, over ``MAX_BEAT_BYTES``, no format version, bad numbers). A beat of another format version (a newer
writer during a rolling upgrade) is kept while its ``seen`` is recent, removed when it is gone or future-dated.
Gone beats are deleted at once. Garbage and future-dated fields are deleted at once when the hash is larger than
one read (they then cost every read); while it fits one read they get a ``GRACE_S`` per-field expiry instead
(HEXPIRE NX; HDEL on a server without it), so that the console can show them as invalid for a minute.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

from redis.exceptions import ResponseError

from ..heartbeat import BEAT_VERSION, MAX_BEAT_BYTES, WORKERS_KEY_NAME, InvalidBeat, WorkerBeat, gone_after_s

PRUNE_CURSOR_KEY_NAME = "workers_prune_cursor"
#: Fields one HSCAN page or one HDEL touches: about a millisecond of server time for beats of a few hundred bytes.
PRUNE_BATCH = 1000
#: Fields the remembered-cursor walk reads per operator read (when the read itself does not cover the hash).
PRUNE_WALK_FIELDS = 2000
#: A beat ``seen`` further than this ahead of the server's time is no live worker (the round trip's own
#: tolerance for a start in the future, ``refresh.MAX_AHEAD_S``).
FUTURE_SLACK_S = 60.0
#: The cursor key lives this long without a read: a walk left half way restarts from 0 later.
CURSOR_TTL_S = 3600
#: While the hash fits in one read, garbage and future-dated fields are not deleted at once but given this
#: per-field expiry (HEXPIRE NX): the console lists them as invalid for a minute (an operator can see that
#: something writes garbage), then the server removes them. Gone beats are deleted at once, as before.
GRACE_S = 60
#: HSCAN cursors are unsigned 64-bit: a stored number outside [0, 2**64) is refused by the server.
MAX_CURSOR = 2**64


def prune_cursor_key(key_prefix: str) -> str:
    return f"{key_prefix}{PRUNE_CURSOR_KEY_NAME}"


def is_future(beat: WorkerBeat, now: float) -> bool:
    return beat.seen > now + FUTURE_SLACK_S


def future_reason(beat: WorkerBeat, now: float) -> str:
    return f"seen {beat.seen - now:,.0f} s in the future (server time): not counted as a worker"


def prune_reason(beat: WorkerBeat | None, error: InvalidBeat | None, raw: Any, now: float) -> str | None:
    """Why a read field should be deleted (None: keep it). ``beat`` is its parse, ``error`` why it did not parse."""
    if beat is not None:
        if beat.state == "gone":
            return "gone"
        if is_future(beat, now):
            return "future"
        return None
    if error is not None and str(error).startswith("format version"):
        return _other_version_reason(raw, now)
    return "garbage"


def _other_version_reason(raw: Any, now: float) -> str | None:
    """Another format version: kept while it looks alive, by the two fields every version carries."""
    try:
        if isinstance(raw, bytes):
            if len(raw) > MAX_BEAT_BYTES:
                return "garbage"
            raw = raw.decode("utf-8", "replace")
        data = json.loads(raw)
        seen, interval = data.get("seen"), data.get("interval", 1.0)
        if not isinstance(data.get("v"), int) or data.get("v") == BEAT_VERSION:
            return "garbage"
        if isinstance(seen, bool) or not isinstance(seen, (int, float)) or not math.isfinite(seen):
            return "garbage"
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not math.isfinite(interval):
            interval = 1.0
    except (ValueError, RecursionError, AttributeError, TypeError):
        return "garbage"
    if seen > now + FUTURE_SLACK_S:
        return "future"
    if now - seen > gone_after_s(float(interval)):
        return "gone"
    return None


def delete_fields(client: Any, key: str, fields: list[Any]) -> int:
    """HDEL ``fields`` in batches of ``PRUNE_BATCH``; how many were deleted."""
    deleted = 0
    for at in range(0, len(fields), PRUNE_BATCH):
        deleted += int(client.hdel(key, *fields[at : at + PRUNE_BATCH]) or 0)
    return deleted


def expire_fields(client: Any, key: str, fields: list[Any], seconds: int = GRACE_S) -> int:
    """Give ``fields`` a per-field expiry of ``seconds`` unless they have one (HEXPIRE … NX, batches of
    ``PRUNE_BATCH``): invalid fields stay visible to operators for a while, then the server removes them. A
    server without HEXPIRE (Redis before 7.4) deletes them at once. Returns how many fields were handled."""
    handled = 0
    for at in range(0, len(fields), PRUNE_BATCH):
        batch = fields[at : at + PRUNE_BATCH]
        try:
            client.hexpire(key, seconds, *batch, nx=True)
        except ResponseError as exc:
            if "unknown command" not in str(exc).lower():
                raise
            delete_fields(client, key, batch)
        handled += len(batch)
    return handled


def walk_and_prune(client: Any, key_prefix: str, now: float, judge: Any, *, fields: int = PRUNE_WALK_FIELDS,
                   grace: bool = False) -> int:
    """Read up to about ``fields`` fields of the workers hash from the remembered cursor, delete the ones
    ``judge(field, raw)`` names (a reason, or None to keep), remember where the walk stopped. With ``grace`` (a
    hash that fits one read), only gone beats are deleted at once; garbage and future-dated fields get their
    ``GRACE_S`` expiry, as ``read_fleet`` gives them. Returns how many fields were deleted or given the expiry.
    Housekeeping: callers suppress its errors (the view is already read)."""
    key = f"{key_prefix}{WORKERS_KEY_NAME}"
    cursor_key = prune_cursor_key(key_prefix)
    stored = client.get(cursor_key)
    cursor = 0
    with contextlib.suppress(TypeError, ValueError):
        cursor = int(stored) if stored is not None else 0
    if not 0 <= cursor < MAX_CURSOR:  # HSCAN refuses it ("invalid cursor"): every walk would fail until it expired
        cursor = 0
    dead: list[tuple[Any, str]] = []
    for _ in range(-(-fields // PRUNE_BATCH)):  # a bounded number of HSCAN calls, each of COUNT PRUNE_BATCH
        cursor, page = client.hscan(key, cursor, count=PRUNE_BATCH)
        for name, raw in page.items():
            why = judge(name, raw)
            if why is not None:
                dead.append((name, why))
        if cursor == 0:
            break
    if grace:
        handled = delete_fields(client, key, [name for name, why in dead if why == "gone"])
        handled += expire_fields(client, key, [name for name, why in dead if why != "gone"])
    else:
        handled = delete_fields(client, key, [name for name, _ in dead])
    client.set(cursor_key, str(cursor), ex=CURSOR_TTL_S)
    return handled
