"""Tiers: the policy as step charts, a classifier to try match contexts, and scenario replays."""

import streamlit as st

from breaker import AdaptivePanicQuota, MatchImportance, explain_importance
from breaker.ops.actions import run_replay
from breaker.ops.drills import SCENARIOS
from console.access import current_access
from console.figures import figure_replay, figure_ttl_steps
from console.page import finish_page, start_page
from console.shared import (
    access_notice,
    audit_trail,
    base_ttl_input,
    drill_client,
    get_target,
    guarded,
    read_clock,
    show_audit_error,
)
from console.text import md_text

sidebar = start_page()
st.title("Tiers")
quota = AdaptivePanicQuota()
base_ttl = base_ttl_input(st, "tiers_base_ttl")
reading = read_clock()
now_min = (reading.duration_s or 0.0) / 60.0 if reading is not None and reading.exists else None
if reading is None:
    st.caption("Redis unreachable: the chart shows no “now”.")
st.plotly_chart(figure_ttl_steps(quota, int(base_ttl), now_min), key="tiers_chart")

st.header("Classifier")
st.caption("Type what a feed would send: the class and the rule that chose it.")
k1, k2, k3 = st.columns(3)
context = {
    "league": k1.text_input("League", value="Premier League", key="tiers_league"),
    "competition": k2.text_input("Competition", key="tiers_competition"),
    "stage": k3.text_input("Stage / round", key="tiers_stage"),
}
classification = explain_importance({k: v for k, v in context.items() if v})
st.metric("Stakes class", classification.importance.value)
st.caption(f"Rule: {md_text(classification.rule)}")
st.dataframe(
    [{"tier": t["tier"], "from (min)": f"{t['from_min']:g}",
      "until (min)": "∞" if t["until_min"] is None else f"{t['until_min']:g}",
      "TTL (s)": min(t["ttl_s"], int(base_ttl))} for t in quota.tier_rows(classification.importance)],
    hide_index=True,
)

st.header("Scenario replay")
st.caption("A signal pattern runs through the real breaker on an accelerated clock, in a scratch namespace "
           "that is deleted afterwards: never the live key. Default mode (the clock ends after a calm period) "
           "beside seed mode (every calm observation ends it).")
access = current_access()
access_notice(access, scratch_only=True)
r1, r2, r3 = st.columns(3)
scenario = r1.selectbox("Signal", SCENARIOS, key="tiers_scenario")
stakes = r2.selectbox("Stakes class", [m.value for m in MatchImportance], index=2, key="tiers_replay_stakes")
minutes = r3.slider("Replay length (min)", min_value=30, max_value=600, value=240, step=30, key="tiers_replay_min")
if st.button("Replay", key="tiers_replay", type="primary", disabled=not access.allowed):
    replay_run = guarded("replaying the scenario", lambda: run_replay(
        audit_trail(), current_access(), client=drill_client(), scenario=scenario,
        key_prefix=get_target().settings.key_prefix, base_ttl=int(base_ttl), stakes=stakes, minutes=int(minutes)))
    if replay_run is not None:
        st.session_state["tiers_replays"] = replay_run.result
        show_audit_error(replay_run)
replays = st.session_state.get("tiers_replays")
if replays:
    st.plotly_chart(figure_replay(replays), key="tiers_replay_chart")
    for replay in replays:
        panic_points = [p for p in replay.points if p.status == "panic"]
        top = max((p.tier for p in panic_points), default=0)
        st.caption(f"{replay.label}: highest tier reached {top}; "
                   f"{sum(p.tier == 1 for p in panic_points)} of {len(panic_points)} panic answers at tier 1.")
finish_page(sidebar)
