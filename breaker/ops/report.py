"""What the CLI prints: JSON documents and human lines built from the shared readings (no I/O here)."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from typing import Any

from ..clock import ClockReading
from ..override import Override
from .fleet import FleetView
from .overrides import OverrideReading
from .timefmt import format_duration, format_ts
from .zombie import DEFAULT_STALE_AFTER_S, zombie_verdict


def when(ts: float | None) -> str:
    return format_ts(ts, missing="-")


def text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def printable(value: Any, *, keep_newlines: bool = False) -> str:
    """``value`` for a terminal: control and format characters (escape sequences, carriage returns, bidi
    overrides) written as ``\\x1b``-style escapes, so that text a worker or an operator chose is shown, never
    acted on by the terminal. A line break inside a value is escaped too unless ``keep_newlines``."""
    return "".join(
        ch if (ch == "\n" and keep_newlines) or unicodedata.category(ch) not in ("Cc", "Cf")
        else ch.encode("unicode_escape").decode("ascii")
        for ch in str(value)
    )


def table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """A plain aligned table: what a terminal and a runbook paste both show well."""
    cells = [tuple(str(h) for h in headers)] + [tuple("-" if c is None else printable(c) for c in row)
                                                for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def clock_doc(reading: ClockReading, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> dict[str, Any]:
    verdict = zombie_verdict(reading, stale_after_s)
    return {
        "exists": reading.exists, "start": reading.start, "raw": text(reading.raw),
        "duration_s": reading.duration_s, "expiry_left_s": reading.expiry_left_s, "has_expiry": reading.has_expiry,
        "last_observed_at": reading.last_observed_at, "zombie": {"suspect": verdict.suspect,
                                                                  "reasons": list(verdict.reasons)},
    }


def override_doc(reading: OverrideReading) -> dict[str, Any] | None:
    if reading.override is None and reading.invalid_reason in (None, "expired"):
        return None
    if reading.override is None:
        return {"invalid_reason": reading.invalid_reason, "raw": text(reading.raw)}
    doc = {**override_json(reading.override), "left_s": reading.left_s}
    if reading.stored_until is not None:  # "until" is where the workers stop: their cap from "since"
        doc["stored_until"] = reading.stored_until
    return doc


def override_json(override: Override) -> dict[str, Any]:
    return json.loads(override.to_json())


def fleet_doc(view: FleetView) -> dict[str, Any]:
    return {
        "now": view.now, "counts": view.counts, "answers_per_s": view.answers_per_s,
        "tiers": {stakes: {str(t): n for t, n in per.items()} for stakes, per in view.tiers.items()},
        "workers": [dataclasses.asdict(beat) for beat in view.workers],
        "disagreeing": [beat.worker_id for beat in view.disagreeing], "invalid": view.invalid,
    }


def clock_line(clock: dict[str, Any], now: float) -> str:
    if not clock["exists"]:
        return "no panic clock"
    if clock["start"] is None:
        return f"unreadable value {clock['raw']!r} (workers answer tier 1 and replace it)"
    expiry = (f"ends in {format_duration(clock['expiry_left_s'])} unless observed" if clock["has_expiry"]
              else "NO EXPIRY")
    return f"panic since {when(clock['start'])} ({format_duration(clock['duration_s'])}), {expiry}"


def override_line(doc: dict[str, Any] | None) -> str:
    if doc is None:
        return "none"
    if "invalid_reason" in doc:
        return f"INVALID, ignored by workers: {doc['invalid_reason']}"
    capped = (f" (stored until {when(doc['stored_until'])}; workers stop at their BREAKER_MAX_OVERRIDE_MIN)"
              if doc.get("stored_until") is not None else "")
    return (f"{doc['mode']} by {printable(doc['who'])} until {when(doc['until'])}{capped} "
            f"({format_duration(doc['left_s'])} left): "
            f"{printable(doc['why'])}")
