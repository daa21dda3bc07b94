"""History: every operator action and breaker state change, a tier timeline, and panic episodes."""

import time

import streamlit as st

from breaker import AuditEntry, panic_episodes
from breaker.audit import KINDS
from pages.figures import figure_tier_timeline
from pages.shared import audit_trail, finish_page, fmt_duration, fmt_ts, show_redis_error, start_page


def render_history(entries: list[AuditEntry], now: float) -> None:
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
        and who.lower() in e.who.lower()
        and (text.lower() in e.action.lower() or text.lower() in e.why.lower())
    ]
    st.dataframe(
        [{"when": fmt_ts(e.at), "kind": e.kind, "who": e.who, "what": e.action, "why": e.why,
          "tier": "" if e.tier is None else str(e.tier)}
         for e in reversed(shown)],
        hide_index=True,
    )
    st.caption(f"{len(shown)} of {len(entries)} entries shown, newest first.")
    st.plotly_chart(figure_tier_timeline(entries, now), key="history_timeline")

    st.header("Panic episodes")
    episodes = panic_episodes(entries, now)
    if not episodes:
        st.caption("No panic episode in the history.")
        return
    st.dataframe(
        [{"start": fmt_ts(ep.start), "end": "ongoing" if ep.ongoing else fmt_ts(ep.end), "peak tier": ep.peak_tier,
          "duration": fmt_duration(ep.duration_s(now))} for ep in reversed(episodes)],
        hide_index=True,
    )


sidebar = start_page()
st.title("History")
trail = audit_trail()
st.caption(f"Stream `{trail.key}`, trimmed to the newest {trail.maxlen} entries. Workers add an entry only when "
           "their mode or tier changes; every console write adds one.")
try:
    history = trail.entries(1000)
except Exception as exc:
    show_redis_error("reading the audit trail", f"{type(exc).__name__}: {exc}")
else:
    render_history(history, time.time())
finish_page(sidebar)
