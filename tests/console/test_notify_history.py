"""History's notifications section in AppTest, with a real notifier thread and a real loopback receiver:
a dead letter is shown, retried by a logged-in operator (audited) and delivered."""

from __future__ import annotations

import threading

import pytest

from breaker import redis_client
from breaker.ops import AuditTrail
from breaker.ops.notify import RETRY_ACTION, Notifier, NotifyStore, RetryPolicy, WebhookTarget
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
