"""Signed webhook notifications for every audited event, delivered at least once (SPEC section 13).

``targets`` (where to), ``messages`` (what: standard JSON or Slack), ``signing`` (Standard Webhooks),
``delivery`` (one bounded POST, the retry schedule), ``store`` (the Redis keys: group, outcomes, dead
letters, retry requests), ``metrics`` (its own registry) and ``notifier`` (the consumer-group loop).
"""

from .delivery import RetryPolicy, TryOutcome, post_once
from .messages import AuditEvent, body_for, slack_body, standard_body
from .metrics import NOTIFY_METRICS, NotifierMetrics
from .notifier import Notifier
from .signing import signed_headers
from .store import GAP_ACTION, GROUP, RETRY_ACTION, DeadLetter, NotifyStore, delivery_states
from .targets import TargetsError, WebhookTarget, load_targets

__all__ = [
    "GAP_ACTION", "GROUP", "NOTIFY_METRICS", "RETRY_ACTION", "AuditEvent", "DeadLetter", "Notifier",
    "NotifierMetrics", "NotifyStore", "RetryPolicy", "TargetsError", "TryOutcome", "WebhookTarget", "body_for",
    "delivery_states", "load_targets", "post_once", "signed_headers", "slack_body", "standard_body",
]
