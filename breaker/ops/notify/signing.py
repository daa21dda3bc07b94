"""Standard Webhooks signatures (the ``standardwebhooks`` package, not hand-written HMAC)."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def signed_headers(secret: str, msg_id: str, body: bytes, now: float) -> dict[str, str]:
    """``webhook-id``/``-timestamp``/``-signature`` for one POST of ``body``.

    ``msg_id`` is the audit entry's stream id: a receiver drops a repeat delivery (a retry, a redelivery after
    a restart) by this id. The timestamp is the time of this try, so a receiver's replay window holds."""
    timestamp = datetime.fromtimestamp(int(now), UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now)),
        "webhook-signature": Webhook(secret).sign(msg_id, timestamp, body),
    }
