"""The notifier loop: the audit stream through a consumer group, one delivery thread per target.

At least once: an entry is acknowledged (XACK) only when every target that wants it answered 2xx or got a
dead letter; until then it stays in the group's pending list, so a notifier killed at any point redelivers
it after a restart (its own pending entries at once, another consumer's after ``claim_idle_s`` through
XAUTOCLAIM). A receiver may therefore see an event twice, always with the same ``webhook-id``.

Each target has its own thread and queue: a hung or failing receiver delays only its own events. The loop
reads while some target has fewer than ``max_queued`` events waiting; a target that falls further behind
(``max_queued + batch``) gets dead letters without a try for the excess, so it can neither hold up the others
nor fill memory (back-pressure only when every target is that far behind). The read
and the trim-gap check are one MULTI (XINFO STREAM, XINFO GROUPS, XREADGROUP), so the group's position is
seen just before the read moves it: an entry trimmed away before anyone read it is reported once (log,
``vix_breaker_notify_lost_total``, a ``notify_gap`` audit entry, History), never skipped silently.
"""

from __future__ import annotations

import json
import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from ...logs import breaker_logger
from ..audit import AuditTrail
from .delivery import RetryPolicy, post_once
from .messages import AuditEvent, as_text, body_for
from .metrics import NotifierMetrics
from .signing import signed_headers
from .store import GAP_ACTION, GROUP, NotifyStore, stream_id_tuple
from .targets import WebhookTarget

log = breaker_logger()
DELIVERED, DEAD = "delivered", "dead"


@dataclass(frozen=True)
class Job:
    key: str  # the stream it came from (audit or retry)
    entry_id: str  # that stream's id: what is acknowledged
    event: AuditEvent  # what is sent (for a retry request, the dead letter's event)
    retried: bool = False


@dataclass
class InFlight:
    """An entry read and not yet acknowledged: its event and the targets still delivering it."""

    event: AuditEvent
    targets: set[str]
    held: bool = False  # trimmed meanwhile and held in the dead-letter hash (``Notifier.hold_trimmed``)


class TargetWorker(threading.Thread):
    """Delivers one target's jobs in order, each with its tries, backoff and, at the end, a dead letter."""

    def __init__(self, target: WebhookTarget, notifier: Notifier) -> None:
        super().__init__(name=f"notify-{target.name}", daemon=True)
        self.target = target
        self.notifier = notifier
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.rng = random.Random()

    def run(self) -> None:
        stop = self.notifier.stop
        while not stop.is_set():
            try:
                job = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                ended = self.deliver(job)
            except Exception as exc:  # a bug must neither stop this thread nor lose the event: a dead letter
                log.exception("notify_worker_error", target=self.target.name, entry=job.event.id)
                ended = self.give_up(job, 0, f"internal error: {type(exc).__name__} (see the notifier's log)")
            if ended:
                self.notifier.job_done(job, self.target.name, delivered=ended == DELIVERED)

    def deliver(self, job: Job) -> str | None:
        """How the job ended, once recorded (``DELIVERED`` or ``DEAD``); None when stopping (left pending)."""
        n = self.notifier
        policy, metrics, target = n.policy, n.metrics, self.target
        body = body_for(job.event, target.format)
        error = ""
        for attempt in range(1, policy.tries + 1):
            if attempt > 1:
                metrics.retried.labels(target.name).inc()
            headers = signed_headers(target.secret, job.event.id, body, n.clock())
            outcome = post_once(target.url, body, headers, policy.timeout_s)
            if outcome.ok:
                metrics.delivered.labels(target.name).inc()
                log.debug("notify_delivered", target=target.name, entry=job.event.id, tries=attempt,
                          ms=round(outcome.seconds * 1000, 1))
                recorded = n.keep_trying(lambda tries=attempt: n.store.record_delivered(
                    job.event.id, target.name, tries, retried=job.retried))
                return DELIVERED if recorded else None
            metrics.failed.labels(target.name).inc()
            error = outcome.error
            if attempt < policy.tries:
                delay = policy.delay_s(attempt, self.rng)
                log.warning("notify_try_failed", target=target.name, entry=job.event.id, tries=attempt,
                            error=error, retry_in_s=round(delay, 2))
                if n.stop.wait(delay):
                    return None  # left pending: redelivered after the restart
        return self.give_up(job, policy.tries, error)

    def give_up(self, job: Job, tries: int, error: str) -> str | None:
        """The dead letter: counted, logged, written (``DEAD`` once it is written)."""
        n, name = self.notifier, self.target.name
        n.metrics.dead_lettered.labels(name).inc()
        log.error("notify_dead_letter", target=name, entry=job.event.id, tries=tries, error=error)
        return DEAD if n.keep_trying(lambda: n.store.record_dead(job.event, name, tries, error)) else None


class Notifier:
    """``run(stop)`` until ``stop`` is set; tests drive it in a thread, the CLI in the foreground."""

    def __init__(
        self,
        client: Any,
        targets: Iterable[WebhookTarget],
        *,
        key_prefix: str | None = None,
        policy: RetryPolicy | None = None,
        consumer: str | None = None,
        claim_idle_s: float = 60.0,
        batch: int = 100,
        max_queued: int = 1000,
        block_ms: int = 1000,
        start_id: str = "$",
        metrics: NotifierMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.targets = tuple(targets)
        self.store = NotifyStore(client, key_prefix=key_prefix, clock=clock)
        self.trail = AuditTrail(client, key_prefix=self.store.prefix, clock=clock)
        self.policy = policy or RetryPolicy()
        self.consumer = consumer or socket.gethostname()
        self.claim_idle_s = claim_idle_s
        self.batch = batch
        self.max_queued = max_queued
        # The blocking XREAD must end before the client's socket timeout would call it a dead server.
        socket_timeout = getattr(client, "connection_pool", None) and \
            client.connection_pool.connection_kwargs.get("socket_timeout")
        self.block_ms = min(block_ms, int(socket_timeout * 500)) if socket_timeout else block_ms
        self.start_id = start_id
        self.metrics = metrics or NotifierMetrics()
        self.clock = clock
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.in_flight: dict[tuple[str, str], InFlight] = {}
        self.workers = {t.name: TargetWorker(t, self) for t in self.targets}
        self.last_ids = {self.store.audit_key: "$", self.store.retry_key: "$"}
        self.warned_unchecked = False

    # ---- completion -------------------------------------------------------------------------------------

    def keep_trying(self, write: Callable[[], Any]) -> bool:
        """A Redis write a delivery depends on: retried every second until it lands or the notifier stops.

        Tried at least once even when stopping: a 2xx that arrives during shutdown is recorded and acknowledged,
        not left pending to be sent again after the restart."""
        while True:
            try:
                write()
                return True
            except (redis.RedisError, OSError) as exc:
                log.warning("notify_redis_error", error=f"{type(exc).__name__}: {exc}")
                if self.stop.wait(1.0):
                    return False

    def job_done(self, job: Job, target: str, *, delivered: bool) -> None:
        """One target is finished with ``job``; the entry is acknowledged when the last one is."""
        slot = (job.key, job.entry_id)
        with self.lock:
            entry = self.in_flight.get(slot)
            if entry is not None:
                entry.targets.discard(target)
            held = entry is not None and entry.held
            last = entry is None or not entry.targets
            if last:
                self.in_flight.pop(slot, None)
        if held and delivered:  # a letter held after record_delivered ran would outlive the delivery
            self.keep_trying(lambda: self.store.drop_letter(job.event.id, target))
        if last:
            self.keep_trying(lambda: self.store.ack(job.key, job.entry_id))

    # ---- the loop ---------------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        if stop is not None:
            self.stop = stop
        self.store.ensure_groups(self.start_id)
        for worker in self.workers.values():
            worker.start()
        log.info("notify_started", consumer=self.consumer, targets=",".join(t.name for t in self.targets),
                 stream=self.store.audit_key)
        next_claim = 0.0
        failures = 0
        try:
            first = True
            while not self.stop.is_set():
                try:
                    if first:
                        self.read_own_pending()
                        first = False
                    if time.monotonic() >= next_claim:
                        self.reclaim()
                        next_claim = time.monotonic() + max(self.claim_idle_s / 3, 0.1)
                    self.read_once()
                    failures = 0
                except redis.ResponseError as exc:
                    if "NOGROUP" not in str(exc) and "no such key" not in str(exc):
                        raise
                    # the stream or the group was deleted (a FLUSHDB, a DEL): start again from new entries
                    log.error("notify_group_recreated", error=str(exc))
                    self.stop.wait(0.1)
                    self.store.ensure_groups("$")
                    continue
                except (redis.RedisError, OSError) as exc:
                    failures += 1
                    log.warning("notify_redis_error", error=f"{type(exc).__name__}: {exc}")
                    self.stop.wait(min(5.0, 0.2 * 2 ** failures))
                self.update_lag()
        finally:
            self.stop.set()
            for worker in self.workers.values():
                if worker.is_alive():
                    worker.join(timeout=self.policy.timeout_s + 1)
            log.info("notify_stopped", consumer=self.consumer, in_flight=len(self.in_flight))

    def read_own_pending(self) -> None:
        """What this consumer read before a restart and never acknowledged: delivered again, at once."""
        for key in (self.store.audit_key, self.store.retry_key):
            start = "0"
            while True:
                reply = self.client.xreadgroup(GROUP, self.consumer, {key: start}, count=self.batch)
                rows = reply[0][1] if reply else []
                if not rows:
                    break
                for entry_id, fields in rows:
                    self.dispatch(key, as_text(entry_id), fields)
                start = as_text(rows[-1][0])

    def reclaim(self) -> None:
        """Take over entries another (crashed) consumer left pending longer than ``claim_idle_s``, and keep
        this consumer's own in-flight entries fresh so that nobody else takes them."""
        idle_ms = int(self.claim_idle_s * 1000)
        for key in (self.store.audit_key, self.store.retry_key):
            with self.lock:
                mine = [entry_id for k, entry_id in self.in_flight if k == key]
            for i in range(0, len(mine), 500):
                kept = self.client.xclaim(key, GROUP, self.consumer, 0, mine[i:i + 500], justid=True)
                self.hold_trimmed(key, set(mine[i:i + 500]) - {as_text(k) for k in kept})
            cursor = "0-0"
            while True:
                reply = self.client.xautoclaim(key, GROUP, self.consumer, idle_ms, start_id=cursor, count=self.batch)
                cursor, rows = as_text(reply[0]), reply[1]
                deleted = [as_text(d) for d in reply[2]] if len(reply) > 2 else []
                for entry_id, fields in rows:
                    self.dispatch(key, as_text(entry_id), fields)
                if deleted:
                    self.report_lost(deleted[0], len(deleted), "pending entries trimmed before delivery", key,
                                     deleted)
                if cursor == "0-0":
                    break

    def read_once(self) -> None:
        self.metrics.last_read.set(self.clock())  # the loop is alive (NotifierNotReading watches this)
        if all(w.jobs.qsize() >= self.max_queued for w in self.workers.values()):
            # back-pressure: every target is far behind; the entries wait in the stream (the lag gauge shows them)
            self.stop.wait(0.05)
            return
        audit, retry = self.store.audit_key, self.store.retry_key
        pipe = self.client.pipeline(transaction=True)
        pipe.xinfo_stream(audit)
        pipe.xinfo_groups(audit)
        pipe.xinfo_stream(retry)
        pipe.xinfo_groups(retry)
        pipe.xreadgroup(GROUP, self.consumer, {audit: ">", retry: ">"}, count=self.batch)
        info, groups, retry_info, retry_groups, reply = pipe.execute()
        self.check_gap(audit, info, groups)
        self.check_gap(retry, retry_info, retry_groups)  # a trimmed retry request was a letter's only copy
        read = 0
        for key, rows in reply or []:
            for entry_id, fields in rows:
                self.dispatch(as_text(key), as_text(entry_id), fields)
                read += 1
        self.last_ids = {audit: as_text(info.get("last-generated-id")),
                         retry: as_text(retry_info.get("last-generated-id"))}
        if not read:  # wait for news without moving the group: the next MULTI reads (and checks) it
            self.client.xread(self.last_ids, block=self.block_ms, count=1)

    def hold_trimmed(self, key: str, missing: set[str]) -> None:
        """In-flight entries that XCLAIM no longer found: trimmed from the stream, and so dropped from the pending
        list, while this notifier still delivers them from memory. Each unfinished target gets a letter in the
        dead-letter hash now, so that a stop or a crash before the delivery leaves a visible, retriable record;
        the delivery removes it (``record_delivered``), a last failed try replaces it."""
        for entry_id in sorted(missing):
            with self.lock:
                entry = self.in_flight.get((key, entry_id))
                if entry is None or entry.held:  # finished meanwhile (acknowledged), or already held
                    continue
                entry.held = True
                targets = sorted(entry.targets)
            log.warning("notify_in_flight_trimmed", stream=key, entry=entry.event.id, targets=",".join(targets))
            for target in targets:
                self.keep_trying(lambda event=entry.event, target=target: self.store.hold(
                    event, target, "audit entry trimmed while in delivery: held here until delivered "
                                   "(left here if the notifier stopped first)"))

    def check_gap(self, key: str, info: dict, groups: list) -> None:
        """Entries added after the group's position that are no longer in the stream were trimmed unread.

        ``entries-read`` is the group's position among every entry ever added (``entries-added``): when the
        oldest entry left is newer than the group's last-delivered id, ``added - read - length`` entries were
        removed before anyone read them. A group without a valid counter (not created by the notifier) cannot
        be checked; that is logged once."""
        group = next((g for g in groups if as_text(g.get("name")) == GROUP), None)
        if group is None:
            return
        entries_read = group.get("entries-read")
        if entries_read is None:
            if not self.warned_unchecked:
                self.warned_unchecked = True
                log.warning("notify_gap_unchecked", reason="the group has no entries-read counter")
            return
        last_delivered = as_text(group.get("last-delivered-id"))
        first = info.get("first-entry")
        first_id = as_text(first[0]) if first and first[0] is not None else None
        if first_id is not None and stream_id_tuple(first_id) <= stream_id_tuple(last_delivered):
            return  # the group is inside the stream: nothing before its next entry was trimmed
        count = int(info.get("entries-added") or 0) - int(entries_read) - int(info.get("length") or 0)
        if count > 0:
            self.report_lost(f"after {last_delivered}", count,
                             f"trimmed before the notifier read them (oldest left: {first_id or 'none'})", key)

    def report_lost(self, first_missing: str, count: int | None, error: str, key: str,
                    deleted: list[str] | None = None) -> None:
        """A trim gap: log, metric, outcome record (History) and an audit entry, which is notified itself."""
        self.metrics.lost.inc(count or 1)
        log.error("notify_gap", stream=key, first_missing=first_missing, count=count, error=error)
        self.keep_trying(lambda: self.store.record_lost(first_missing, count, error))
        self.keep_trying(lambda: self.trail.record(
            who=f"notifier {self.consumer}", action=GAP_ACTION, kind="operator",
            why=f"{'some' if count is None else count} audit entries were {error}: never notified",
            first_missing=first_missing, count=count, stream=key))
        for entry_id in deleted or []:
            self.keep_trying(lambda entry_id=entry_id: self.store.ack(key, entry_id))

    def dispatch(self, key: str, entry_id: str, fields: Any) -> None:
        slot = (key, entry_id)
        with self.lock:
            if slot in self.in_flight:
                return  # already being delivered here (a reclaim saw it again)
        if not fields:  # a pending entry whose stream entry was trimmed or deleted
            self.report_lost(entry_id, 1, "pending entry trimmed before delivery", key, [entry_id])
            return
        if key == self.store.retry_key:
            jobs = self.retry_jobs(key, entry_id, fields)
        else:
            event = AuditEvent.from_stream(entry_id, fields)
            jobs = [(w, Job(key, entry_id, event)) for w in self.workers.values() if w.target.wants(event.action)]
        jobs = [(worker, job) for worker, job in jobs if not self.shed(worker, job)]
        if not jobs:
            self.keep_trying(lambda: self.store.ack(key, entry_id))
            return
        with self.lock:
            self.in_flight[slot] = InFlight(jobs[0][1].event, {worker.target.name for worker, _ in jobs})
        for worker, job in jobs:
            worker.jobs.put(job)

    def shed(self, worker: TargetWorker, job: Job) -> bool:
        """True when ``worker`` is too far behind to queue ``job``, which is then a dead letter without a try."""
        waiting = worker.jobs.qsize()
        if waiting < self.max_queued + self.batch:
            return False
        ended = worker.give_up(job, 0, f"not tried: {waiting} events were waiting for this target (failing or slow)")
        return ended is not None

    def retry_jobs(self, key: str, entry_id: str, raw: Any) -> list[tuple[TargetWorker, Job]]:
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        try:
            event = AuditEvent(fields["event"], dict(json.loads(fields.get("fields", "{}"))))
        except (KeyError, ValueError, TypeError):
            log.error("notify_retry_unreadable", entry=entry_id)
            return []
        worker = self.workers.get(fields.get("target", ""))
        if worker is None:
            log.error("notify_retry_unknown_target", target=fields.get("target"), entry=event.id)
            self.keep_trying(lambda: self.store.record_dead(event, fields.get("target", "?"), 0,
                                                            "target no longer configured"))
            return []
        return [(worker, Job(key, entry_id, event, retried=True))]

    def update_lag(self) -> None:
        with self.lock:
            ids = [stream_id_tuple(entry_id) for key, entry_id in self.in_flight if key == self.store.audit_key]
        self.metrics.oldest_undelivered.set(min(ids)[0] / 1000.0 if ids else 0)
