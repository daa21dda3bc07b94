"""The notifier against a real Valkey and real HTTP receivers on loopback (issue 22's done-when list)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from breaker import redis_client
from breaker.ops.audit import AuditTrail
from breaker.ops.notify import GAP_ACTION, GROUP, Notifier, NotifyStore, RetryPolicy, WebhookTarget
from tests.ops.webhook_receiver import WebhookReceiver, free_port, wait_for

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(server_url, server_redis):
    """A client whose socket timeout outlasts the notifier's 1 s blocking read, on a flushed Valkey 9 and a flushed
    Redis 7.0 (every test here runs on both: consumer groups' counters and XAUTOCLAIM replies are version facts)."""
    made = redis_client(server_url, timeout_ms=5000)
    yield made
    made.close()


@pytest.fixture
def receivers():
    started: list[WebhookReceiver] = []

    def make(port: int | None = None, start: bool = True) -> WebhookReceiver:
        receiver = WebhookReceiver(port)
        started.append(receiver)
        return receiver.start() if start else receiver

    yield make
    for receiver in started:
        receiver.stop()


@pytest.fixture
def run_notifier(client):
    """Start a Notifier in a thread; every one is stopped (and joined) at teardown."""
    running: list[tuple[Notifier, threading.Thread]] = []

    def start(targets, **options) -> Notifier:
        options.setdefault("policy", RetryPolicy(tries=20, base_s=0.05, cap_s=0.5, timeout_s=2.0))
        options.setdefault("block_ms", 200)
        notifier = Notifier(client, targets, **options)
        thread = threading.Thread(target=notifier.run, daemon=True)
        thread.start()
        running.append((notifier, thread))
        wait_for(lambda: _has_group(client), 10, "the consumer group")
        return notifier

    yield start
    for notifier, thread in running:
        notifier.stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the notifier did not stop"


def _has_group(client) -> bool:
    try:
        return any(g["name"] in (GROUP, GROUP.encode()) for g in client.xinfo_groups("brain:audit"))
    except Exception:
        return False


def _record(trail: AuditTrail, n: int) -> list[str]:
    return [trail.record(who="alice", action="override_set", why=f"event {i}", mode="force_full") for i in range(n)]


def _pending(client) -> int:
    return client.xpending("brain:audit", GROUP)["pending"]


def test_twenty_events_survive_a_receiver_outage_and_verify(client, receivers, run_notifier):
    """The receiver is down for 10 s while 20 events are written (the notifier fails tries against it), then
    comes up: all 20 arrive, each signature verifies with standardwebhooks, and a tampered body does not.
    100 tries with waits of at least 0.25 s once capped outlast the outage (no dead letter)."""
    receiver = receivers(start=False)  # its port is chosen, nothing listens yet
    policy = RetryPolicy(tries=100, base_s=0.05, cap_s=0.5, timeout_s=2.0)
    notifier = run_notifier([WebhookTarget("ops", receiver.url, SECRET)], policy=policy)
    ids = _record(AuditTrail(client), 20)
    down_since = time.monotonic()
    wait_for(lambda: notifier.metrics.failed.labels("ops")._value.get() >= 5 and time.monotonic() - down_since >= 10,
             30, "a 10 s outage with failed tries")
    assert notifier.metrics.dead_lettered.labels("ops")._value.get() == 0
    oldest = notifier.metrics.oldest_undelivered._value.get()
    assert oldest == int(ids[0].split("-")[0]) / 1000  # the lag gauge: the first event's stream time
    receiver.start()
    wait_for(lambda: receiver.ids() >= set(ids), 60, "all 20 events after the outage")
    assert receiver.ids() == set(ids)
    hook = Webhook(SECRET)
    for received in receiver.received:
        doc = hook.verify(received.body, received.headers)
        assert doc["id"] == received.webhook_id and doc["type"] == "override_set"
        assert doc["actor"] == {"name": "alice", "auth": "", "role": ""}
    sample = receiver.received[0]
    with pytest.raises(WebhookVerificationError):
        hook.verify(sample.body.replace(b"force_full", b"force_calm"), sample.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(sample.body, sample.headers)
    wait_for(lambda: _pending(client) == 0, 10, "every entry acknowledged")
    wait_for(lambda: notifier.metrics.oldest_undelivered._value.get() == 0, 10, "no lag once all are delivered")


def _notify_process(env: dict, consumer: str, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "breaker", "notify", "--consumer", consumer, "--claim-idle-s", "0.5", "--tries", "50",
         "--backoff-s", "0.05", "--backoff-cap-s", "0.3", "--timeout-s", "5", *options],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_delivery_then_restart_loses_nothing(client, server_url, receivers):
    """A real `vix-breaker notify` process is SIGKILLed while a POST is in flight; a second one (another consumer
    name: it takes the first one's pending entries over with XAUTOCLAIM) delivers the rest. Every event arrives;
    a duplicate carries the same webhook-id and the same signed body."""
    receiver = receivers()
    receiver.delay_s = 0.15  # slow enough that the kill lands mid-delivery
    env = {**os.environ, "REDIS_URL": server_url, "VIX_BREAKER_WEBHOOK_URL": receiver.url,
           "VIX_BREAKER_WEBHOOK_SECRET": SECRET, "BREAKER_LOG_LEVEL": "INFO", "BREAKER_REDIS_TIMEOUT_MS": "1000"}
    env.pop("BREAKER_KEY_PREFIX", None)
    first = _notify_process(env, "first")
    second = None
    try:
        wait_for(lambda: _has_group(client) or first.poll() is not None, 30, "the first notifier's group")
        assert first.poll() is None, first.stderr.read()
        ids = _record(AuditTrail(client), 20)
        wait_for(lambda: len(receiver.received) >= 5, 30, "some deliveries before the kill")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert len(receiver.ids()) < 20, "the kill came too late to test anything"
        assert _pending(client) > 0
        metrics_port = free_port()
        second = _notify_process(env, "second", "--metrics-port", str(metrics_port))
        wait_for(lambda: receiver.ids() >= set(ids), 60, "all 20 events after the restart")
        wait_for(lambda: _pending(client) == 0, 10, "every entry acknowledged")
        served = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        assert 'vix_breaker_notify_delivered_total{target="default"}' in served
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(15)
    assert second.returncode == 0, second.stderr.read()  # SIGTERM ends it cleanly
    hook = Webhook(SECRET)
    bodies: dict[str, set[bytes]] = {}
    for received in receiver.received:
        hook.verify(received.body, received.headers)
        bodies.setdefault(received.webhook_id, set()).add(received.body)
    assert set(bodies) == set(ids)
    assert all(len(b) == 1 for b in bodies.values())  # a duplicate is the same event under the same id


def test_always_500_ends_in_a_dead_letter_after_the_last_try(client, receivers, run_notifier):
    """Three tries against a receiver that answers 500, then one dead letter (target, event, error, tries) and
    the entry acknowledged; the outcome log says dead."""
    receiver = receivers()
    receiver.status = 500
    notifier = run_notifier([WebhookTarget("ops", receiver.url, SECRET)],
                            policy=RetryPolicy(tries=3, base_s=0.01, cap_s=0.05, timeout_s=2.0))
    [event_id] = _record(AuditTrail(client), 1)
    store = NotifyStore(client)
    [letter] = wait_for(store.dead_letters, 20, "a dead letter")
    assert (letter.event_id, letter.target, letter.tries, letter.error) == (event_id, "ops", 3, "HTTP 500")
    assert letter.fields["action"] == "override_set"
    assert notifier.metrics.failed.labels("ops")._value.get() == 3
    assert notifier.metrics.retried.labels("ops")._value.get() == 2
    assert notifier.metrics.dead_lettered.labels("ops")._value.get() == 1
    wait_for(lambda: _pending(client) == 0, 10, "the entry acknowledged")
    assert [(o.event_id, o.state) for o in store.outcomes()] == [(event_id, "dead")]


def test_a_hung_target_does_not_delay_the_other(client, receivers, run_notifier):
    """Target "slow" accepts the connection and never answers; target "fast" gets the event while the hung
    request is still open, and "slow" ends in its own time (bounded tries)."""
    hung, fast = receivers(), receivers()
    hung.hang.set()
    run_notifier([WebhookTarget("slow", hung.url, SECRET), WebhookTarget("fast", fast.url, OTHER_SECRET)],
                 policy=RetryPolicy(tries=2, base_s=0.01, cap_s=0.01, timeout_s=5.0))
    [event_id] = _record(AuditTrail(client), 1)
    wait_for(lambda: fast.ids() == {event_id}, 20, "the healthy target's delivery")
    assert hung.hung_requests == 1 and not hung.release.is_set()  # still hanging when the other one received
    assert NotifyStore(client).dead_letters() == []


def test_trim_gap_is_reported_not_skipped(client, receivers, run_notifier):
    """Entries trimmed from the audit stream before the notifier read them: one notify_gap audit entry (itself
    notified), the lost counter, a ``lost`` outcome for History; the entries still in the stream are delivered."""
    receiver = receivers()
    NotifyStore(client).ensure_groups("$")  # the group exists; the notifier is down
    small = AuditTrail(client, maxlen=5)
    ids = _record(small, 13)  # 8 trimmed away unread
    notifier = run_notifier([WebhookTarget("ops", receiver.url, SECRET)])
    wait_for(lambda: receiver.ids() >= set(ids[-5:]), 20, "the 5 entries left")
    assert not receiver.ids() & set(ids[:-5])
    assert notifier.metrics.lost._value.get() == 8
    gaps = [e for e in AuditTrail(client).entries() if e.action == GAP_ACTION]
    assert len(gaps) == 1 and gaps[0].detail["count"] == 8 and "8 audit entries" in gaps[0].why
    wait_for(lambda: gaps[0].id in receiver.ids(), 20, "the gap's own notification")
    lost = [o for o in NotifyStore(client).outcomes() if o.state == "lost"]
    assert len(lost) == 1 and lost[0].error.startswith("8 entries")


def test_pending_entry_trimmed_after_a_crash_is_reported(client, receivers, run_notifier):
    """An entry read by a notifier that then died, and trimmed before anyone delivered it, is a reported loss
    when the next notifier reclaims the pending list (XAUTOCLAIM names deleted entries)."""
    receiver = receivers()
    store = NotifyStore(client)
    store.ensure_groups("$")
    trail = AuditTrail(client, maxlen=3)
    [lost_id] = _record(trail, 1)
    client.xreadgroup(GROUP, "crashed", {"brain:audit": ">"}, count=1)  # read, never acknowledged
    kept = _record(trail, 3)  # the read entry is trimmed away
    notifier = run_notifier([WebhookTarget("ops", receiver.url, SECRET)], claim_idle_s=0.1)
    wait_for(lambda: receiver.ids() >= set(kept), 20, "the entries left")
    wait_for(lambda: notifier.metrics.lost._value.get() == 1, 20, "the reported loss")
    assert lost_id not in receiver.ids()
    wait_for(lambda: _pending(client) == 0, 10, "the lost entry acknowledged")
    assert any(e.action == GAP_ACTION for e in AuditTrail(client).entries())


def test_filters_and_formats_per_target(client, receivers, run_notifier):
    """A target gets only the actions its filter matches; the slack target gets a Slack body, signed too."""
    everything, overrides_only = receivers(), receivers()
    run_notifier([WebhookTarget("all", everything.url, SECRET),
                  WebhookTarget("chat", overrides_only.url, OTHER_SECRET, ("override_*",), "slack")])
    trail = AuditTrail(client)
    login = trail.record(who="bob", action="login", kind="login")
    [override] = _record(trail, 1)
    wait_for(lambda: everything.ids() == {login, override} and overrides_only.ids() == {override}, 20,
             "both deliveries")
    Webhook(OTHER_SECRET).verify(overrides_only.received[0].body, overrides_only.received[0].headers,
                                 json_parse=False)
    body = json.loads(overrides_only.received[0].body)
    assert body["text"].startswith("override_set by alice") and body["blocks"][0]["type"] == "section"


def test_unreachable_port_fails_fast_and_counts(client, run_notifier):
    """Nothing listens: each try fails at connect, is counted, and the event ends as a dead letter."""
    url = f"http://127.0.0.1:{free_port()}/hook"
    notifier = run_notifier([WebhookTarget("gone", url, SECRET)],
                            policy=RetryPolicy(tries=2, base_s=0.01, cap_s=0.01, timeout_s=1.0))
    _record(AuditTrail(client), 1)
    [letter] = wait_for(NotifyStore(client).dead_letters, 20, "a dead letter")
    assert "ConnectionRefused" in letter.error
    assert notifier.metrics.failed.labels("gone")._value.get() == 2


def test_restart_under_the_same_name_resends_its_own_pending_at_once(client, receivers):
    """A notifier stopped while its receiver is down leaves its entries pending; started again under the same
    consumer name it re-sends them at once (no claim wait). One of them trimmed meanwhile is a reported loss."""
    receiver = receivers(start=False)
    target = [WebhookTarget("ops", receiver.url, SECRET)]
    policy = RetryPolicy(tries=50, base_s=0.05, cap_s=0.2, timeout_s=2.0)

    def run(notifier: Notifier) -> threading.Thread:
        thread = threading.Thread(target=notifier.run, daemon=True)
        thread.start()
        return thread

    first = Notifier(client, target, consumer="n1", claim_idle_s=3600, block_ms=200, policy=policy)
    thread = run(first)
    wait_for(lambda: _has_group(client), 10, "the group")
    ids = _record(AuditTrail(client), 3)
    wait_for(lambda: first.metrics.failed.labels("ops")._value.get() >= 1 and _pending(client) == 3, 20,
             "three entries pending")
    first.stop.set()
    thread.join(15)
    assert not thread.is_alive() and _pending(client) == 3
    later = _record(AuditTrail(client, maxlen=4), 2)  # trims the oldest pending entry
    receiver.start()
    second = Notifier(client, target, consumer="n1", claim_idle_s=3600, block_ms=200, policy=policy)
    thread = run(second)
    try:
        wait_for(lambda: receiver.ids() >= set(ids[1:] + later), 20, "the pending entries and the new ones")
        wait_for(lambda: second.metrics.lost._value.get() == 1, 10, "the trimmed pending entry reported")
        wait_for(lambda: _pending(client) == 0, 10, "everything acknowledged")
        assert ids[0] not in receiver.ids()
    finally:
        second.stop.set()
        thread.join(15)


def test_retry_needs_the_operator_role_and_writes_nothing_without_it(client):
    """Not logged in or a viewer: refused, the letter stays, no retry request, no audit; an operator retries."""
    from breaker.ops.notify.messages import AuditEvent
    from breaker.ops.roles import Principal, RoleRefused

    store = NotifyStore(client)
    store.ensure_groups()
    store.record_dead(AuditEvent("1-0", {"action": "panic_end", "who": "bob", "at": "1.0"}), "ops", 3, "HTTP 500")
    [letter] = store.dead_letters()
    for refused in (Principal.anonymous(), Principal.of("vera", "viewer")):
        with pytest.raises(RoleRefused):
            store.retry_dead_letter(letter.key, refused, AuditTrail(client))
    assert [d.key for d in store.dead_letters()] == ["1-0|ops"]
    assert client.xlen(store.retry_key) == 0 and AuditTrail(client).entries() == []
    carol = Principal.of("carol", "operator")
    assert store.retry_dead_letter(letter.key, carol, AuditTrail(client), "receiver fixed")
    assert not store.retry_dead_letter(letter.key, carol, AuditTrail(client))  # gone already
    assert client.xlen(store.retry_key) == 1
    [entry] = AuditTrail(client).entries()
    assert (entry.who, entry.action, entry.why, entry.auth, entry.role) == (
        "carol", "notify_retry", "receiver fixed", "password", "operator")


def test_deleted_audit_stream_is_recreated_and_new_events_flow(client, receivers, run_notifier):
    """Someone deletes the stream (and with it the group): the notifier says so, recreates both, carries on."""
    receiver = receivers()
    run_notifier([WebhookTarget("ops", receiver.url, SECRET)])
    [before] = _record(AuditTrail(client), 1)
    wait_for(lambda: receiver.ids() == {before}, 20, "the first event")
    client.delete("brain:audit", "brain:notify:retry")
    wait_for(lambda: _has_group(client), 20, "the group again")
    [after] = _record(AuditTrail(client), 1)
    wait_for(lambda: after in receiver.ids(), 20, "an event after the deletion")


def test_an_internal_error_at_one_target_is_a_dead_letter_not_an_ack(client, receivers, run_notifier):
    """A delivery that raises (here http.client's ValueError for a port no config check would pass) is a dead
    letter for that target, visible and retriable. It used to drop the entry's whole in-flight count, so the
    healthy target's 2xx acknowledged the entry while the broken target had neither delivered nor dead-lettered
    it, and the entry then bounced between reclaims for ever."""
    healthy = receivers()
    notifier = run_notifier([WebhookTarget("ok", healthy.url, SECRET),
                             WebhookTarget("broken", "http://127.0.0.1:99999/hook", OTHER_SECRET)],
                            claim_idle_s=0.2)
    [event_id] = _record(AuditTrail(client), 1)
    wait_for(lambda: healthy.ids() == {event_id}, 20, "the healthy target's delivery")
    [letter] = wait_for(NotifyStore(client).dead_letters, 10, "a dead letter for the broken target")
    assert (letter.event_id, letter.target) == (event_id, "broken") and letter.error.startswith("internal error")
    assert SECRET not in letter.error and OTHER_SECRET not in letter.error
    wait_for(lambda: _pending(client) == 0, 10, "the entry acknowledged once both targets are done")
    assert notifier.metrics.dead_lettered.labels("broken")._value.get() == 1


def test_sigterm_during_a_delivery_records_and_acknowledges_it(client, server_url, receivers):
    """SIGTERM while a POST is in flight: the receiver's 2xx is recorded and acknowledged on the way out (the
    write is tried once even when stopping), so the restart does not send it again; the process exits 0."""
    receiver = receivers()
    receiver.delay_s = 0.4
    env = {**os.environ, "REDIS_URL": server_url, "VIX_BREAKER_WEBHOOK_URL": receiver.url,
           "VIX_BREAKER_WEBHOOK_SECRET": SECRET, "BREAKER_LOG_LEVEL": "INFO"}
    env.pop("BREAKER_KEY_PREFIX", None)
    process = _notify_process(env, "n1")
    try:
        wait_for(lambda: _has_group(client) or process.poll() is not None, 30, "the notifier's group")
        [event_id] = _record(AuditTrail(client), 1)
        wait_for(lambda: receiver.arrived == 1, 20, "the POST in flight")
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode == 0, process.stderr.read()
    assert receiver.ids() == {event_id}
    assert _pending(client) == 0
    assert [(o.event_id, o.state) for o in NotifyStore(client).outcomes()] == [(event_id, "delivered")]


def test_a_redelivered_event_clears_its_stale_dead_letter(client, receivers, run_notifier):
    """A notifier that wrote a dead letter and died before its XACK: the next one sends the event again, and
    when that succeeds the dead letter goes (History must not offer to retry an event already delivered)."""
    receiver = receivers()
    store = NotifyStore(client)
    store.ensure_groups("$")
    [event_id] = _record(AuditTrail(client), 1)
    [(_, [(_, fields)])] = client.xreadgroup(GROUP, "crashed", {"brain:audit": ">"}, count=1)
    from breaker.ops.notify import AuditEvent
    store.record_dead(AuditEvent.from_stream(event_id, fields), "ops", 20, "HTTP 500")  # then the crash: no XACK
    run_notifier([WebhookTarget("ops", receiver.url, SECRET)], claim_idle_s=0.1)
    wait_for(lambda: receiver.ids() == {event_id}, 20, "the redelivery")
    wait_for(lambda: _pending(client) == 0, 10, "the entry acknowledged")
    assert store.dead_letters() == []


def test_a_redirect_is_not_followed_and_its_host_never_sees_the_signature(client, receivers, run_notifier):
    """A receiver answering 307 to another host: a failed try (retried, then a dead letter); nothing, and in
    particular no signature, reaches the host it points at."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    elsewhere = receivers()

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(307)
            self.send_header("location", elsewhere.url)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=redirector.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{redirector.server_address[1]}/hook"
        run_notifier([WebhookTarget("moved", url, SECRET)],
                     policy=RetryPolicy(tries=2, base_s=0.01, cap_s=0.01, timeout_s=2.0))
        _record(AuditTrail(client), 1)
        [letter] = wait_for(NotifyStore(client).dead_letters, 20, "a dead letter")
        assert letter.error == "HTTP 307"
        assert elsewhere.arrived == 0
    finally:
        redirector.shutdown()
        redirector.server_close()


def test_a_dead_target_with_a_full_queue_does_not_hold_up_the_healthy_one(client, receivers, run_notifier):
    """A target that fails every try works through its queue one event at a time (all its tries each). Once it
    is ``max_queued`` events behind, the loop used to stop reading: the healthy target got nothing new, and the
    stream's 10 000-entry trim would in the end lose events for every target. Now the healthy target gets every
    event at once; the dead one keeps ``max_queued`` events, and those beyond are dead letters without a try
    (visible, retriable), so its memory stays bounded."""
    healthy = receivers()
    dead = f"http://127.0.0.1:{free_port()}/hook"
    run_notifier([WebhookTarget("ok", healthy.url, SECRET), WebhookTarget("dead", dead, OTHER_SECRET)],
                 policy=RetryPolicy(tries=3, base_s=0.5, cap_s=0.5, jitter=0.0, timeout_s=1.0),
                 max_queued=3, batch=2)
    ids = _record(AuditTrail(client), 20)
    wait_for(lambda: healthy.ids() == set(ids), 5, "every event at the healthy target while the other is dead")
    letters = wait_for(lambda: len(NotifyStore(client).dead_letters()) == 20 and NotifyStore(client).dead_letters(),
                       30, "a dead letter per event at the dead target")
    assert {d.event_id for d in letters} == set(ids) and {d.target for d in letters} == {"dead"}
    untried = [d for d in letters if d.tries == 0]
    assert untried and all(d.error.startswith("not tried") for d in untried)
    wait_for(lambda: _pending(client) == 0, 10, "every entry acknowledged")


def test_an_entry_trimmed_while_in_delivery_is_held_as_a_letter_until_delivered(client, receivers, run_notifier):
    """XCLAIM (the notifier's own refresh of its in-flight entries) silently drops a trimmed entry from the
    pending list, on Valkey 9 and Redis 7.0 alike. The event was then only in the notifier's memory: a stop or a
    crash before its delivery lost it without a report. It is now held in the dead-letter hash from that moment
    (visible, retriable) and the letter goes when the delivery succeeds."""
    receiver = receivers()
    receiver.status = 500
    notifier = run_notifier([WebhookTarget("ops", receiver.url, SECRET)], claim_idle_s=0.3,
                            policy=RetryPolicy(tries=1000, base_s=0.05, cap_s=0.1, timeout_s=2.0))
    [event_id] = _record(AuditTrail(client), 1)
    wait_for(lambda: receiver.arrived >= 2, 20, "the event failing at the receiver")
    client.xtrim("brain:audit", maxlen=0, approximate=False)  # 10 000 newer entries, in short
    [letter] = wait_for(NotifyStore(client).dead_letters, 10, "the trimmed in-flight event held as a letter")
    assert (letter.event_id, letter.target, letter.tries) == (event_id, "ops", 0) and "trimmed" in letter.error
    assert letter.fields["why"] == "event 0"
    assert notifier.metrics.dead_lettered.labels("ops")._value.get() == 0  # not given up on: still being tried
    receiver.status = 200
    wait_for(lambda: receiver.ids() == {event_id}, 20, "the delivery")
    wait_for(lambda: NotifyStore(client).dead_letters() == [], 10, "the held letter gone once delivered")


def test_two_notifiers_stealing_from_each_other_lose_nothing(client, receivers, run_notifier):
    """Two notifiers in one group with a claim time shorter than their refresh can be late (``claim_idle_s`` 0.2,
    a 200 ms blocking read): they take each other's in-flight entries over. Every event still arrives, nothing
    stays pending, and any duplicate is the same event under the same id (an XACK by one of them never ends the
    other's delivery early, because each acknowledges only after all of its own targets are done)."""
    receiver = receivers()
    receiver.delay_s = 0.05
    targets = [WebhookTarget("ops", receiver.url, SECRET)]
    run_notifier(targets, consumer="a", claim_idle_s=0.2)
    run_notifier(targets, consumer="b", claim_idle_s=0.2)
    ids = _record(AuditTrail(client), 30)
    wait_for(lambda: receiver.ids() >= set(ids), 30, "all 30 events")
    wait_for(lambda: _pending(client) == 0, 10, "nothing pending")
    bodies: dict[str, set[bytes]] = {}
    for received in receiver.received:
        bodies.setdefault(received.webhook_id, set()).add(received.body)
    assert set(bodies) == set(ids) and all(len(b) == 1 for b in bodies.values())


def test_retry_requests_trimmed_before_the_notifier_read_them_are_a_reported_gap(client, receivers, run_notifier):
    """A retry takes the letter out of the dead-letter hash and puts a request on ``notify:retry`` (trimmed to
    10 000). Requests trimmed unread (many retries while the notifier is down) were the only copy of those
    events: that gap is checked like the audit stream's and reported, not silent."""
    receiver = receivers()
    store = NotifyStore(client)
    store.ensure_groups("$")
    for n in range(13):  # the console's request, with a small MAXLEN standing in for 10 000
        client.xadd(store.retry_key, {"event": f"1-{n}", "target": "ops",
                                      "fields": json.dumps({"action": "panic_end", "who": "bob", "at": "1.0"})},
                    maxlen=5, approximate=False)
    notifier = run_notifier([WebhookTarget("ops", receiver.url, SECRET)])
    wait_for(lambda: receiver.ids() >= {f"1-{n}" for n in range(8, 13)}, 20, "the 5 requests left")
    wait_for(lambda: notifier.metrics.lost._value.get() == 8, 10, "the 8 trimmed requests reported")
    [gap] = [e for e in AuditTrail(client).entries() if e.action == GAP_ACTION]
    assert gap.detail["count"] == 8 and gap.detail["stream"] == store.retry_key
