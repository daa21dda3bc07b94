"""The notifier's Redis keys, beside the audit stream they are about (same prefix, same cluster slot).

- ``{prefix}audit``, consumer group ``notify``: what is read, what is pending, what is acknowledged.
- ``{prefix}notify:log`` (stream, trimmed to ``LOG_MAXLEN``): one record per final outcome of an event at a
  target (``delivered``, ``dead``, ``lost`` for entries trimmed away before delivery). History reads it.
- ``{prefix}notify:dead`` (hash, ``<event id>|<target>`` -> JSON): the dead letters, with the event's fields,
  so a retry works even after the audit entry was trimmed.
- ``{prefix}notify:retry`` (stream, group ``notify``): retry requests the console writes; the notifier
  delivers each one to its one target.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from ...clock import client_key_prefix
from ..access import WriteAccess
from ..audit import AUDIT_KEY_NAME, AuditTrail
from .messages import AuditEvent, as_text

GROUP = "notify"
LOG_MAXLEN = 20_000
RETRY_MAXLEN = 10_000
RETRY_ACTION = "notify_retry"
GAP_ACTION = "notify_gap"


def letter_key(event_id: str, target: str) -> str:
    """The dead-letter hash's field for one event at one target."""
    return f"{event_id}|{target}"


def stream_id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class DeadLetter:
    event_id: str
    target: str
    action: str
    tries: int
    error: str
    at: float
    fields: dict[str, str]

    @property
    def key(self) -> str:
        return letter_key(self.event_id, self.target)


@dataclass(frozen=True)
class Outcome:
    """One record of ``{prefix}notify:log``."""

    event_id: str
    target: str
    state: str  # delivered | dead | lost | retry_delivered
    tries: int
    error: str
    at: float


class NotifyStore:
    def __init__(self, client: Any, *, key_prefix: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.prefix = client_key_prefix(client) if key_prefix is None else key_prefix
        self.audit_key = f"{self.prefix}{AUDIT_KEY_NAME}"
        self.retry_key = f"{self.prefix}notify:retry"
        self.dead_key = f"{self.prefix}notify:dead"
        self.log_key = f"{self.prefix}notify:log"
        self.clock = clock

    # ---- the notifier's side ----------------------------------------------------------------------------

    def ensure_groups(self, start_id: str = "$") -> None:
        """Create the groups (and the streams) if missing; an existing group keeps its position.

        The audit group is created with a true ``entries-read`` counter (its position among all entries ever
        added), which is what the trim-gap check compares: ``$`` starts after every entry added so far, ``0``
        at the oldest entry still there (what was trimmed before the group existed is not the notifier's loss).
        """
        self._create_group(self.audit_key, start_id)
        self._create_group(self.retry_key, "0")

    def _create_group(self, key: str, start_id: str) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if pipe.exists(key):
                        info = pipe.xinfo_stream(key)
                        added, length = int(info.get("entries-added") or 0), int(info.get("length") or 0)
                        entry_id = as_text(info.get("last-generated-id")) if start_id == "$" else "0"
                        entries_read = added if start_id == "$" else added - length
                    else:
                        entry_id, entries_read = "0", 0
                    pipe.multi()
                    pipe.xgroup_create(key, GROUP, id=entry_id, mkstream=True, entries_read=entries_read)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue
                except redis.ResponseError as exc:
                    if "BUSYGROUP" in str(exc):
                        return
                    raise

    def _log(self, pipe: Any, event_id: str, target: str, state: str, tries: int, error: str = "") -> None:
        pipe.xadd(self.log_key, {"event": event_id, "target": target, "state": state, "tries": str(tries),
                                 "error": error[:300], "at": repr(self.clock())},
                  maxlen=LOG_MAXLEN, approximate=False)

    def record_delivered(self, event_id: str, target: str, tries: int, *, retried: bool = False) -> None:
        """The outcome, and the end of any dead letter for this event and target: one written by a notifier
        that died before its XACK is stale once the redelivery succeeds."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.dead_key, letter_key(event_id, target))
        self._log(pipe, event_id, target, "retry_delivered" if retried else "delivered", tries)
        pipe.execute()

    def record_dead(self, event: AuditEvent, target: str, tries: int, error: str) -> None:
        letter = _letter(event, target, tries, error, self.clock())
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.dead_key, letter_key(event.id, target), json.dumps(letter, sort_keys=True))
        self._log(pipe, event.id, target, "dead", tries, error)
        pipe.execute()

    def hold(self, event: AuditEvent, target: str, note: str) -> None:
        """A letter for an event still being delivered whose audit entry is gone (no outcome record): the only
        durable copy until the delivery ends."""
        letter = _letter(event, target, 0, note, self.clock())
        self.client.hset(self.dead_key, letter_key(event.id, target), json.dumps(letter, sort_keys=True))

    def drop_letter(self, event_id: str, target: str) -> None:
        self.client.hdel(self.dead_key, letter_key(event_id, target))

    def record_lost(self, first_missing: str, count: int | None, error: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        self._log(pipe, first_missing, "*", "lost", 0, f"{'?' if count is None else count} entries: {error}")
        pipe.execute()

    def ack(self, key: str, entry_id: str) -> None:
        self.client.xack(key, GROUP, entry_id)

    # ---- the console's side -----------------------------------------------------------------------------

    def dead_letters(self) -> list[DeadLetter]:
        letters = []
        for field, raw in self.client.hgetall(self.dead_key).items():
            try:
                doc = json.loads(raw)
                letters.append(DeadLetter(str(doc["event"]), str(doc["target"]), str(doc.get("action", "?")),
                                          int(doc.get("tries", 0)), str(doc.get("error", "")),
                                          float(doc.get("at", 0)), dict(doc.get("fields", {}))))
            except (ValueError, KeyError, TypeError):
                letters.append(DeadLetter(as_text(field).partition("|")[0], as_text(field).partition("|")[2], "?", 0,
                                          "unreadable dead-letter record", 0.0, {}))
        return sorted(letters, key=lambda letter: (stream_id_tuple_safe(letter.event_id), letter.target))

    def retry_dead_letter(self, letter_key: str, access: WriteAccess, trail: AuditTrail, why: str = "") -> bool:
        """Move one dead letter back to the notifier (an operator-role write, audited in the same MULTI).

        False when it is gone already (another operator retried it, or it was delivered)."""
        access.require("retrying a notification", "notify_retry")
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(self.dead_key)
                raw = pipe.hget(self.dead_key, letter_key)
                if raw is None:
                    return False
                doc = json.loads(raw)
                pipe.multi()
                pipe.hdel(self.dead_key, letter_key)
                pipe.xadd(self.retry_key, {"event": str(doc["event"]), "target": str(doc["target"]),
                                           "fields": json.dumps(doc.get("fields", {}), sort_keys=True)},
                          maxlen=RETRY_MAXLEN, approximate=False)
                trail.record_in(pipe, who=access.who, action=RETRY_ACTION, why=why or "dead letter retried",
                                event=str(doc["event"]), target=str(doc["target"]), **access.audit())
                pipe.execute()
            except redis.WatchError:
                return False
        return True

    def outcomes(self, count: int = 2000) -> list[Outcome]:
        """The newest ``count`` outcome records, newest first."""
        rows = []
        for _entry_id, raw in self.client.xrevrange(self.log_key, count=count):
            f = {as_text(k): as_text(v) for k, v in raw.items()}
            try:
                rows.append(Outcome(f["event"], f["target"], f["state"], int(f.get("tries", 0)), f.get("error", ""),
                                    float(f.get("at", 0))))
            except (KeyError, ValueError):
                continue
        return rows

    def group_position(self) -> tuple[str | None, set[str]]:
        """The group's last-delivered id (None without a group) and the ids read but not yet acknowledged."""
        try:
            groups = self.client.xinfo_groups(self.audit_key)
        except redis.ResponseError:
            return None, set()
        group = next((g for g in groups if as_text(g.get("name")) == GROUP), None)
        if group is None:
            return None, set()
        pending = self.client.xpending_range(self.audit_key, GROUP, min="-", max="+", count=1000)
        return as_text(group.get("last-delivered-id")), {as_text(p["message_id"]) for p in pending}


def _letter(event: AuditEvent, target: str, tries: int, error: str, at: float) -> dict[str, Any]:
    """A dead letter's JSON document: enough to retry the event after its audit entry is gone."""
    return {"event": event.id, "target": target, "action": event.action, "tries": tries, "error": error[:300],
            "at": at, "fields": event.fields}


def stream_id_tuple_safe(entry_id: str) -> tuple[int, int]:
    try:
        return stream_id_tuple(entry_id)
    except ValueError:
        return (0, 0)


def delivery_states(event_ids: Iterable[str], outcomes: list[Outcome], last_delivered: str | None,
                    pending: set[str]) -> dict[str, str]:
    """Each event's delivery state as History shows it: per target ``delivered``/``dead`` from the newest
    outcome, else ``in delivery`` (read, not acknowledged), ``waiting`` (not read yet) or ``before the notifier``
    (older than the group's start, or no notifier)."""
    latest: dict[str, dict[str, Outcome]] = {}
    for outcome in reversed(outcomes):  # oldest first: newer outcomes overwrite
        latest.setdefault(outcome.event_id, {})[outcome.target] = outcome
    states = {}
    last = stream_id_tuple_safe(last_delivered) if last_delivered else None
    for event_id in event_ids:
        if event_id in pending:
            done = latest.get(event_id, {})
            states[event_id] = "in delivery" + (f" ({_per_target(done)} so far)" if done else "")
        elif event_id in latest:
            states[event_id] = _per_target(latest[event_id])
        elif last is None:
            states[event_id] = "no notifier"
        elif stream_id_tuple_safe(event_id) > last:
            states[event_id] = "waiting"
        else:
            states[event_id] = "not sent (no target wanted it, or older than the notifier)"
    return states


def _per_target(by_target: dict[str, Outcome]) -> str:
    return ", ".join(f"{target}: {o.state.replace('retry_delivered', 'delivered on retry')}"
                     for target, o in sorted(by_target.items()))
