"""What a receiver gets for one audit entry: a ``standard`` JSON event or a Slack incoming-webhook body.

The event is built from the stream entry's raw fields, so it is the same on every try and after a restart
(the signature covers these bytes). ``time`` is the Redis server's clock when the entry was written (the
milliseconds of its stream id); the entry's ``at`` is the writer's own clock for most actions, kept as
``recorded_at``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..audit import parse_entry


def as_text(value: Any) -> str:
    """A Redis reply value (bytes or not) as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class AuditEvent:
    """One audit entry as notifications carry it: its stream id and its raw fields (strings)."""

    id: str
    fields: dict[str, str]

    @classmethod
    def from_stream(cls, entry_id: Any, raw: dict[Any, Any]) -> AuditEvent:
        return cls(as_text(entry_id), {as_text(k): as_text(v) for k, v in raw.items()})

    @property
    def action(self) -> str:
        return self.fields.get("action", "?")

    def document(self) -> dict[str, Any]:
        """The ``standard`` format: type, id, time (ISO 8601, UTC, server time), actor, and the entry's fields."""
        entry = parse_entry(self.id, self.fields)
        at = server_time(self.id, entry.at)
        doc: dict[str, Any] = {
            "type": entry.action,
            "id": self.id,
            "time": iso_time(at),
            "timestamp": at,
            "actor": {"name": entry.who, "auth": self.fields.get("auth", ""), "role": self.fields.get("role", "")},
            "data": {"kind": entry.kind, "why": entry.why, "tier": entry.tier, "detail": entry.detail,
                     "recorded_at": entry.at},
        }
        if entry.problems:
            doc["problems"] = list(entry.problems)
        return doc


def server_time(entry_id: str, fallback: float) -> float:
    """The server's clock at XADD: an automatic stream id is its milliseconds (``fallback`` for any other id)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms) / 1000 if ms.isdigit() and seq.isdigit() else fallback


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def strict_json_value(value: Any) -> Any:
    """``value`` with NaN and the infinities as strings: Python's json writes them, RFC 8259 parsers refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("nan", "NaN").replace("inf", "Infinity")
    if isinstance(value, dict):
        return {k: strict_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json_value(v) for v in value]
    return value


def standard_body(event: AuditEvent) -> bytes:
    return json.dumps(strict_json_value(event.document()), sort_keys=True, separators=(",", ":"), default=str,
                      allow_nan=False).encode()


SLACK_TEXT_LIMIT = 3000  # Slack refuses a mrkdwn text object longer than this (the whole message, not the text)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def slack_escape(text: str) -> str:
    """Slack's three control characters: a name like ``<!channel>`` must not ping anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_line(text: str) -> str:
    """Operator-supplied text on one line, escaped: a line break in a name cannot start a fake headline."""
    return slack_escape(CONTROL_CHARACTERS.sub(" ", text))


def slack_clip(text: str, limit: int = SLACK_TEXT_LIMIT) -> str:
    """At most ``limit`` characters, cut (with an ellipsis) before an escape it would split."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[:limit - 1]) + "…"


def slack_mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object with Slack's automatic parsing off (``verbatim``): a bare URL, ``@channel`` or
    ``#channel`` in an operator's text stays text; the only markup left is the one this module writes."""
    return {"type": "mrkdwn", "text": slack_clip(text), "verbatim": True}


def slack_body(event: AuditEvent) -> bytes:
    """A Slack incoming-webhook message: ``text`` (notifications, fallback) and ``blocks`` (what is shown).

    Every line of the reason is quoted, so a reason cannot fake a second event's headline."""
    doc = event.document()
    actor = doc["actor"]
    who = actor["name"] + (f" ({actor['role']})" if actor["role"] else "")
    headline = slack_line(f"{doc['type']} by {who}")
    lines = [f"*{slack_clip(headline, 500)}*"]
    why = doc["data"]["why"]
    if why:
        lines.extend(f"> {slack_line(line)}" for line in why[:SLACK_TEXT_LIMIT].splitlines() or [""])
    detail = doc["data"]["detail"]
    if detail:
        lines.extend(f"• {slack_line(str(k))}: {slack_line(json.dumps(strict_json_value(v), default=str))}"
                     for k, v in sorted(detail.items()))
    context = f"vix-breaker · {doc['time']} (server time) · id {doc['id']}"
    if doc["data"]["tier"] is not None:
        context += f" · tier {doc['data']['tier']}"
    if actor["auth"]:
        context += f" · auth {actor['auth']}"
    body = {
        "text": slack_clip(headline + (f": {slack_line(why[:SLACK_TEXT_LIMIT])}" if why else "")),
        "blocks": [
            {"type": "section", "text": slack_mrkdwn("\n".join(lines))},
            {"type": "context", "elements": [slack_mrkdwn(slack_line(context))]},
        ],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


FORMATTERS = {"standard": standard_body, "slack": slack_body}


def body_for(event: AuditEvent, fmt: str) -> bytes:
    return FORMATTERS[fmt](event)
