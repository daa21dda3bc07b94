"""What a receiver gets for one audit entry: a ``standard`` JSON event or a Slack incoming-webhook body.

The event is built from the stream entry's raw fields, so it is the same on every try and after a restart
(the signature covers these bytes). ``time`` is the entry's ``at``: the server time the writer recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..audit import _entry as parse_audit_entry


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class AuditEvent:
    """One audit entry as notifications carry it: its stream id and its raw fields (strings)."""

    id: str
    fields: dict[str, str]

    @classmethod
    def from_stream(cls, entry_id: Any, raw: dict[Any, Any]) -> AuditEvent:
        return cls(_text(entry_id), {_text(k): _text(v) for k, v in raw.items()})

    @property
    def action(self) -> str:
        return self.fields.get("action", "?")

    def document(self) -> dict[str, Any]:
        """The ``standard`` format: type, id, time (ISO 8601, UTC, server time), actor, and the entry's fields."""
        entry = parse_audit_entry(self.id, self.fields)
        doc: dict[str, Any] = {
            "type": entry.action,
            "id": self.id,
            "time": iso_time(entry.at),
            "timestamp": entry.at,
            "actor": {"name": entry.who, "auth": self.fields.get("auth", ""), "role": self.fields.get("role", "")},
            "data": {"kind": entry.kind, "why": entry.why, "tier": entry.tier, "detail": entry.detail},
        }
        if entry.problems:
            doc["problems"] = list(entry.problems)
        return doc


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def standard_body(event: AuditEvent) -> bytes:
    return json.dumps(event.document(), sort_keys=True, separators=(",", ":"), default=str).encode()


def slack_escape(text: str) -> str:
    """Slack's three control characters: a name like ``<!channel>`` must not ping anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(event: AuditEvent) -> bytes:
    """A Slack incoming-webhook message: ``text`` (notifications, fallback) and ``blocks`` (what is shown)."""
    doc = event.document()
    actor = doc["actor"]
    who = actor["name"] + (f" ({actor['role']})" if actor["role"] else "")
    headline = f"{doc['type']} by {who}"
    lines = [f"*{slack_escape(headline)}*"]
    why = doc["data"]["why"]
    if why:
        lines.append(f"> {slack_escape(why)}")
    detail = doc["data"]["detail"]
    if detail:
        lines.append("\n".join(f"• {slack_escape(str(k))}: {slack_escape(json.dumps(v, default=str))}"
                               for k, v in sorted(detail.items())))
    context = f"vix-breaker · {doc['time']} (server time) · id {doc['id']}"
    if doc["data"]["tier"] is not None:
        context += f" · tier {doc['data']['tier']}"
    if actor["auth"]:
        context += f" · auth {actor['auth']}"
    body = {
        "text": slack_escape(headline + (f": {why}" if why else "")),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(context)}]},
        ],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


FORMATTERS = {"standard": standard_body, "slack": slack_body}


def body_for(event: AuditEvent, fmt: str) -> bytes:
    return FORMATTERS[fmt](event)
