"""History's notifications section in AppTest, with a real notifier thread and a real loopback receiver:
a dead letter is shown, retried by a logged-in operator (audited) and delivered."""

from __future__ import annotations

import threading

import pytest

from breaker import redis_client
from breaker.ops import AuditTrail
from breaker.ops.notify import GAP_ACTION, RETRY_ACTION, Notifier, NotifyStore, RetryPolicy, WebhookTarget
from tests.console.conftest import login, open_console
from tests.ops.webhook_receiver import WebhookReceiver, wait_for

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def failing_receiver():
    receiver = WebhookReceiver().start()
    receiver.status = 500
    yield receiver
    receiver.stop()


@pytest.fixture
def notifier(console_env, redis_url, failing_receiver):
    client = redis_client(redis_url, timeout_ms=5000)
    running = Notifier(client, [WebhookTarget("ops", failing_receiver.url, SECRET)], block_ms=200,
                       policy=RetryPolicy(tries=2, base_s=0.01, cap_s=0.01, timeout_s=2.0))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    wait_for(lambda: NotifyStore(client).group_position()[0] is not None, 10, "the group")
    yield running
    running.stop.set()
    thread.join(15)
    client.close()


def test_history_without_a_notifier_says_so(console_env):
    at = open_console("pages/history.py")
    assert not at.exception
    assert any(c.value.startswith("No notifier has read this audit stream") for c in at.caption)


def test_dead_letter_shown_then_retried_by_an_operator(console_env, notifier, failing_receiver):
    event_id = AuditTrail(console_env).record(who="bob", action="panic_end", why="drill over")
    wait_for(NotifyStore(console_env).dead_letters, 20, "a dead letter")
    at = open_console("pages/history.py")
    assert not at.exception
    letters = next(df.value for df in at.dataframe if "last error" in df.value.columns)
    assert list(letters["event"]) == [event_id] and list(letters["last error"]) == ["HTTP 500"]
    delivery = next(df.value for df in at.dataframe if "delivery" in df.value.columns)
    assert delivery.loc[delivery["id"] == event_id, "delivery"].item() == "ops: dead"
    key = f"notify_retry_{event_id}|ops"
    assert at.button(key=key).disabled  # read-only until login

    at = login(at)
    failing_receiver.status = 200  # the receiver is fixed
    at.button(key=key).click().run()
    assert not at.exception
    assert any("Queued again for" in s.value for s in at.success)
    wait_for(lambda: event_id in failing_receiver.ids(), 20, "the retried delivery")
    wait_for(lambda: event_id not in {d.event_id for d in NotifyStore(console_env).dead_letters()}, 10,
             "the dead letter gone")
    retry = [e for e in AuditTrail(console_env).entries() if e.action == RETRY_ACTION]
    assert len(retry) == 1 and retry[0].who == "alice (self-declared)"
    assert retry[0].detail == {"event": event_id, "target": "ops"}
    at.run()
    delivery = next(df.value for df in at.dataframe if "delivery" in df.value.columns)
    assert delivery.loc[delivery["id"] == event_id, "delivery"].item() == "ops: delivered on retry"


def test_history_shows_a_trim_gap_the_notifier_reported(console_env, redis_url):
    """Issue 22: audit entries trimmed away before the notifier read them (a real notifier thread finds the gap
    in its group's counters and records it: a ``lost`` outcome and a notify_gap audit entry). History shows the
    loss as an error naming how many were never notified, and the notify_gap entry in its table."""
    receiver = WebhookReceiver().start()
    client = redis_client(redis_url, timeout_ms=5000)
    try:
        NotifyStore(client).ensure_groups("$")  # the group exists; the notifier is down
        small = AuditTrail(client, maxlen=5)
        for i in range(13):  # 8 trimmed away unread
            small.record(who="alice", action="override_set", why=f"event {i}", mode="force_full")
        running = Notifier(client, [WebhookTarget("ops", receiver.url, SECRET)], block_ms=200,
                           policy=RetryPolicy(tries=2, base_s=0.01, cap_s=0.01, timeout_s=2.0))
        thread = threading.Thread(target=running.run, daemon=True)
        thread.start()
        try:
            [gap] = wait_for(lambda: [e for e in AuditTrail(client).entries() if e.action == GAP_ACTION], 20,
                             "the notify_gap entry")
            wait_for(lambda: [o for o in NotifyStore(client).outcomes() if o.state == "lost"], 10,
                     "the lost outcome")
        finally:
            running.stop.set()
            thread.join(15)
    finally:
        client.close()
        receiver.stop()
    at = open_console("pages/history.py")
    assert not at.exception
    [shown] = [e.value for e in at.error if "never notified" in e.value]
    assert shown.startswith("Audit entries never notified") and "8 entries" in shown and "trimmed" in shown
    entries = next(df.value for df in at.dataframe if "kind" in df.value.columns)
    [row] = [row for _, row in entries.iterrows() if row["what"] == GAP_ACTION]
    assert row["who"] == gap.who and "8 audit entries" in row["why"]


def test_retry_button_label_shows_stored_text_as_text(console_env):
    """A button label is markdown (links, images): a dead letter's action and target come from Redis, so they
    go through md_text like every other stored text the console shows."""
    from breaker.ops.notify import AuditEvent
    from console.text import md_text

    store = NotifyStore(console_env)
    store.ensure_groups()
    action = "[click me](http://evil.example) ![x](http://evil.example/i.png)"
    store.record_dead(AuditEvent("1-0", {"action": action, "who": "bob", "at": "1.0"}), "ops", 3, "HTTP 500")
    at = open_console("pages/history.py")
    assert not at.exception
    label = at.button(key="notify_retry_1-0|ops").label
    assert md_text(action) in label and "Retry " + action not in label
