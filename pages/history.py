"""History: every operator action and breaker state change, a tier timeline, and panic episodes."""

import time
from typing import Any

import streamlit as st

from breaker.ops import AuditEntry, PanicEpisode, canonical_name, panic_episodes
from breaker.ops.audit import CLOCK_UNKNOWN, KINDS, OverrideEpisode, epoch_changes, override_episodes
from console.figures import figure_tier_timeline
from console.notifications import render_notifications
from console.page import finish_page, start_page
from console.schedule_controls import render_window_history
from console.shared import (
    audit_trail,
    fmt_duration,
    fmt_ts,
    read_clock,
    show_redis_error,
)

HISTORY_ENTRIES = 1000


def render_history(entries: list[AuditEntry], now: float, clock_start: Any = CLOCK_UNKNOWN) -> None:
    if not entries:
        st.info("No history yet: operator actions and breaker state changes appear here.",
                icon=":material/history:")
    f1, f2, f3 = st.columns(3)
    kinds = f1.multiselect("Kind", KINDS, default=list(KINDS), key="history_kinds")
    who = f2.text_input("Who contains", key="history_who")
    text = f3.text_input("Action or why contains", key="history_text")
    shown = [
        e for e in entries
        if e.kind in kinds
        and canonical_name(who) in canonical_name(e.who)
        and (text.lower() in e.action.lower() or text.lower() in e.why.lower())
    ]
    st.dataframe(
        [{"when": fmt_ts(e.at), "kind": e.kind, "who": e.who, "auth": e.auth, "role": e.role, "what": e.action,
          "why": e.why, "tier": "" if e.tier is None else str(e.tier), "problem": "; ".join(e.problems)}
         for e in reversed(shown)],
        hide_index=True,
    )
    st.caption(f"{len(shown)} of {len(entries)} entries shown, newest first.")
    st.plotly_chart(figure_tier_timeline(entries, now, clock_start), key="history_timeline")

    st.header("Panic episodes")
    episodes = panic_episodes(entries, now, clock_start)
    if not episodes:
        st.caption("No panic episode in the history.")
    else:
        st.dataframe(
            [{"start": fmt_ts(ep.start), "end": _end_label(ep, now), "peak tier": ep.peak_tier,
              "duration": fmt_duration(ep.duration_s(now))} for ep in reversed(episodes)],
            hide_index=True,
        )
    changes = epoch_changes(entries)
    if changes:
        st.warning(f"The panic epoch changed {len(changes)} time(s): each change is a new panic start. One that no "
                   "operator's end or clear explains is a start lost in a failover or replaced as unusable.",
                   icon=":material/restart_alt:")
        st.dataframe([{"at": fmt_ts(c.at), "from epoch": c.previous, "to epoch": c.epoch, "reported by": c.who}
                      for c in reversed(changes)], hide_index=True)
    render_override_episodes(override_episodes(entries, now), now)
    render_window_history(entries)


def render_override_episodes(episodes: list[OverrideEpisode], now: float) -> None:
    st.header("Override episodes")
    if not episodes:
        st.caption("No override in the history.")
        return
    st.dataframe(
        [{"mode": ep.mode, "set by": ep.who, "why": ep.why, "start": fmt_ts(ep.start),
          "end": "on" if ep.end is None else fmt_ts(ep.end), "ended": ep.ended_by,
          "extended": sum(ev.what == "extended" for ev in ep.events),
          "lasted": fmt_duration((now if ep.end is None else ep.end) - ep.start)} for ep in reversed(episodes)],
        hide_index=True,
    )
    st.caption("An expiry is not written by anyone: it is derived from the end the override was set or extended to.")


def _end_label(episode: PanicEpisode, now: float) -> str:
    if episode.ongoing:
        return "ongoing"
    if episode.end == now:  # workers do not log calm: the clock is gone, its expiry time was not recorded
        return "over (clock gone, end not recorded)"
    return fmt_ts(episode.end)


def current_clock() -> tuple[float, Any]:
    """The server's now (every "ongoing", "lasted" and the timeline's end are server time, as workers measure)
    and the live clock's start (None when there is none) so that episodes whose clock is gone end. Without an
    answer from Redis: this machine's time and an unknown start."""
    reading = read_clock()
    if reading is None:
        return time.time(), CLOCK_UNKNOWN
    if reading.exists and not reading.parses:
        return reading.now, CLOCK_UNKNOWN
    return reading.now, (reading.start if reading.exists else None)


sidebar = start_page()
st.title("History")
trail = audit_trail()
st.caption(f"The newest {HISTORY_ENTRIES} entries of the stream `{trail.key}` (which keeps the newest "
           f"{trail.maxlen}). Workers add an entry only when their mode or tier changes; every console write adds one.")
try:
    history = trail.entries(HISTORY_ENTRIES)
except Exception as exc:
    show_redis_error("reading the audit trail", f"{type(exc).__name__}: {exc}")
else:
    render_history(history, *current_clock())
    render_notifications(history)
finish_page(sidebar)
