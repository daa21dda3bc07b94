"""The Fleet page's view model: rows, filters, sort order and summaries from a ``FleetView``, without Streamlit.

Pure functions of the data ``breaker.ops.fleet.read_fleet`` returns (one round trip), so that the page script
only lays them out and tests can check them with hand-made heartbeats. Worker-supplied strings (ids, hosts,
errors, versions) pass through untouched: the page shows them in a table or as text, never as markdown.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from breaker import MatchImportance

#: The states the page counts, in display order (``gone`` workers are pruned, never shown).
STATES = ("panic", "calm", "fail_safe", "stale")
STATE_LABELS = {"panic": "panic", "calm": "calm", "fail_safe": "fail-safe", "stale": "stale", "gone": "gone"}
STAKES = tuple(m.value for m in MatchImportance)
STAKES_SHORT = {"high_stakes": "high", "medium_stakes": "medium", "low_stakes": "low"}
SORT_ORDERS = ("state", "last seen", "host", "answers", "errors first")
_STATE_RANK = {state: rank for rank, state in enumerate(("fail_safe", "stale", "panic", "calm", "gone"))}


@dataclass(frozen=True)
class WorkerFilter:
    """What the operator narrowed the table to: states, a text to find in id/host/error/version, errors only."""

    states: frozenset[str] = frozenset(STATES)
    text: str = ""
    errors_only: bool = False

    def keeps(self, beat: Any) -> bool:
        if beat.state not in self.states:
            return False
        if self.errors_only and not beat.error:
            return False
        needle = self.text.strip().casefold()
        if not needle:
            return True
        haystack = (beat.worker_id, beat.host, beat.error or "", beat.version or "", beat.override or "")
        return any(needle in str(value).casefold() for value in haystack)


def live_workers(workers: Iterable[Any]) -> list[Any]:
    """Workers that are not gone (a reader prunes those; one read between expiry and pruning may see them)."""
    return [w for w in workers if w.state != "gone"]


def filter_workers(workers: Iterable[Any], keep: WorkerFilter) -> list[Any]:
    return [w for w in live_workers(workers) if keep.keeps(w)]


def sort_workers(workers: Sequence[Any], order: str) -> list[Any]:
    """The table's starting order (the grid still sorts by any column on click); ties by worker id."""
    if order == "last seen":
        return sorted(workers, key=lambda w: (-w.seen, w.worker_id))
    if order == "host":
        return sorted(workers, key=lambda w: (w.host, w.pid, w.worker_id))
    if order == "answers":
        return sorted(workers, key=lambda w: (-_answers(w), w.worker_id))
    if order == "errors first":
        return sorted(workers, key=lambda w: (not w.error, _STATE_RANK.get(w.state, 9), w.worker_id))
    if order == "state":
        return sorted(workers, key=lambda w: (_STATE_RANK.get(w.state, 9), w.worker_id))
    raise ValueError(f"order must be one of {', '.join(SORT_ORDERS)}, got {order!r}")


def tiers_text(tiers: dict[str, int]) -> str:
    """``high 1 · medium 2 · low 3`` in stakes order; classes the worker has not answered are left out."""
    known = [f"{STAKES_SHORT[s]} {tiers[s]}" for s in STAKES if s in tiers]
    others = [f"{s} {t}" for s, t in sorted(tiers.items()) if s not in STAKES_SHORT]
    return " · ".join(known + others) or "—"


def worker_rows(workers: Iterable[Any], now: float) -> list[dict[str, Any]]:
    """One table row per worker; ``seen (s ago)`` is measured in server time, as ``seen`` is written."""
    return [
        {
            "worker": w.worker_id,
            "host": w.host,
            "pid": w.pid,
            "state": STATE_LABELS.get(w.state, w.state),
            "seen (s ago)": round(max(0.0, now - w.seen), 1),
            "tiers": tiers_text(w.tiers),
            "answers": _answers(w),
            "fail-safe": w.fail_safe,
            "override": override_label(w.override),
            "epoch": getattr(w, "epoch", None),
            "clock skew (s)": None if getattr(w, "skew_s", None) is None else round(w.skew_s, 1),
            "last error": w.error or "",
            "version": w.version or "",
        }
        for w in workers
    ]


def override_label(reported: str | None) -> str:
    """What a heartbeat says it honours: the mode, whether the worker reports a mode or the override's JSON."""
    mode = reported_mode(reported)
    return mode if mode is not None else (reported or "")


def reported_mode(reported: str | None) -> str | None:
    if not reported:
        return None
    text = reported.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        mode = data.get("mode") if isinstance(data, dict) else None
        return mode if isinstance(mode, str) else None
    return text


def honouring(workers: Iterable[Any], mode: str) -> tuple[int, int]:
    """(workers whose last beat honours ``mode``, workers reporting): the banner's "3 of 5 honour it".

    Stale workers count in neither: their last beat says nothing about now.
    """
    current = [w for w in workers if w.state not in ("stale", "gone")]
    return sum(reported_mode(w.override) == mode for w in current), len(current)


def state_counts(workers: Iterable[Any]) -> dict[str, int]:
    """Workers per state (``STATES`` order, zeros included): the page's metrics."""
    counts = dict.fromkeys(STATES, 0)
    for w in workers:
        if w.state in counts:
            counts[w.state] += 1
    return counts


def fleet_summary(counts: dict[str, int], answers_per_s: float, disagreeing: int = 0) -> str:
    """Live's one line about the fleet; numbers only, so it is safe as markdown."""
    total = sum(counts.get(s, 0) for s in STATES)
    if total == 0:
        return "Fleet: no worker reports heartbeats."
    parts = ", ".join(f"{counts.get(s, 0)} {STATE_LABELS[s]}" for s in STATES)
    line = f"Fleet: {total} worker{'s' if total != 1 else ''} ({parts}) · {answers_per_s:,.1f} answers/s"
    if disagreeing:
        line += f" · {disagreeing} disagree{'s' if disagreeing == 1 else ''} with the clock"
    return line


def epoch_caption(summary: Any) -> str:
    """Live's line about the panic epoch (numbers only): the counter, the epochs the window's panic beats answer
    from, and, when they differ, that a start changed (a new one, or one lost in a failover)."""
    if not summary.epoch and not summary.epochs:
        return ""
    answered = ", ".join(str(e) for e in sorted(summary.epochs)) or "none in the last window"
    line = f"Panic epoch {summary.epoch or 0} · workers answer from epoch {answered}"
    if summary.epoch_changed:
        line += (" · EPOCH CHANGED: a new panic start, or a start lost in a Redis failover (workers still on the "
                 "old one restart at tier 1 when they observe the new clock)")
    return line


def tier_matrix(tiers: dict[str, dict[Any, int]]) -> dict[str, dict[int, int]]:
    """Workers per tier for each stakes class (stakes order, tiers 0–4 with zeros); JSON keys become ints.

    Only the policy's classes: a class name a worker made up is its text, not a bar to label.
    """
    matrix = {stakes: dict.fromkeys(range(5), 0) for stakes in STAKES}
    for stakes, by_tier in tiers.items():
        row = matrix.get(str(stakes))
        if row is None:
            continue
        for tier, count in by_tier.items():
            try:
                row[int(tier)] = row.get(int(tier), 0) + int(count)
            except (TypeError, ValueError):
                continue
    return matrix


def disagreement_rows(
    disagreeing: Iterable[Any], implied: Callable[[Any, str], int | None], now: float
) -> list[dict[str, Any]]:
    """The workers whose last tiers differ from what the clock implied when they beat, both side by side;
    ``implied(beat, stakes)`` is that tier (None when it cannot be judged)."""
    rows = []
    for w in disagreeing:
        expected = {s: t for s in w.tiers if (t := implied(w, s)) is not None}
        rows.append({
            "worker": w.worker_id,
            "host": w.host,
            "reports": tiers_text(w.tiers),
            "clock implies": tiers_text(expected),
            "version": w.version or "",
            "seen (s ago)": round(max(0.0, now - w.seen), 1),
        })
    return rows


def _answers(beat: Any) -> int:
    return sum(beat.calls.values())


def skew_text(low: float | None, high: float | None) -> str:
    """" · worker clocks -1.2 s to +0.3 s off the server's", or "" when no worker reported; a rounding to zero
    reads +0.0, never -0.0."""
    if low is None or high is None:
        return ""
    return f" · worker clocks {round(low, 1) + 0.0:+.1f} s to {round(high, 1) + 0.0:+.1f} s off the server's"
