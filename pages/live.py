"""Live: what the workers answer right now, per stakes class (the override's answer first), and the clock."""

import streamlit as st

from breaker.ops import zombie_verdict
from breaker.ops.status import worker_answers
from breaker.ops.timefmt import format_latency_ms
from console.fleet_data import read_fleet_summary
from console.fleet_view import epoch_caption, fleet_summary
from console.live_cards import show_class_card, show_tier_banner
from console.page import finish_page, start_page
from console.shared import (
    base_ttl_input,
    fmt_duration,
    fmt_ts,
    last_health,
    observed_caption,
    read_clock,
    show_redis_error,
    stale_min_input,
)
from console.text import md_text

REFRESH_S = 3

sidebar = start_page()
st.title("Live")
left, right = st.columns(2)
base_ttl = base_ttl_input(left, "live_base_ttl")
stale_min = stale_min_input(right, "live_stale_min", "Zombie threshold: not refreshed for (min)")


@st.fragment(run_every=REFRESH_S)
def live_panel() -> None:
    view = read_fleet_summary()  # the clock, the override and the fleet's aggregates: the same cost at any size
    fleet_error = None
    if view is not None:
        reading = view.reading
    else:  # the heartbeats may be what failed (a workers hash too big for the timeout): the clock alone
        failed = last_health()
        fleet_error = failed.error if failed is not None else None
        reading = read_clock()
    health = last_health()
    if reading is None:
        show_redis_error("reading the panic clock")
        if health is not None:
            st.caption(f"Redis unreachable · checked at {fmt_ts(health.checked_at, time_only=True)} · "
                       f"refreshes every {REFRESH_S} s")
        return
    override = view.override.override if view is not None else None
    answers = worker_answers(reading, override, int(base_ttl), off_tiers=view.off_tiers if view is not None else None)
    show_tier_banner(answers)
    if view is not None:
        st.page_link("pages/fleet.py", label=fleet_summary(view.counts, view.answers_per_s, view.disagreeing),
                     icon=":material/dns:")
        epoch = epoch_caption(view)
        if view.epoch_changed:
            st.warning(epoch, icon=":material/restart_alt:")
        elif epoch:
            st.caption(epoch)
    else:
        st.caption(f"Fleet: the workers' heartbeats could not be read ({md_text(fleet_error or 'no answer')}); "
                   "the clock below was read on its own.")
    for column, answer in zip(st.columns(3), answers):
        with column:
            show_class_card(answer)

    st.subheader("Panic clock")
    if not reading.exists:
        st.success("No panic clock: every worker answers its base TTL.", icon=":material/check_circle:")
    cols = st.columns(4)
    cols[0].metric("Panic start", fmt_ts(reading.start, time_only=True), help=fmt_ts(reading.start))
    cols[1].metric("Duration", fmt_duration(reading.duration_s))
    expiry = "no expiry" if reading.exists and not reading.has_expiry else fmt_duration(reading.expiry_left_s)
    cols[2].metric("Expiry left", expiry)
    cols[3].metric("Last panic observation", fmt_duration(reading.since_last_observation_s) + " ago"
                   if reading.last_observed_at is not None else "—")
    verdict = zombie_verdict(reading, stale_min * 60.0)
    if verdict.suspect:
        st.warning("Zombie suspect:\n" + "\n".join(f"- {md_text(reason)}" for reason in verdict.reasons),
                   icon=":material/skull:")
        st.page_link("pages/drills.py", label="Force-clear it on Drills", icon=":material/construction:")
    elif reading.exists:
        st.caption(f"Zombie verdict: not a suspect: {observed_caption(reading)}")
    if health is not None:
        read = "clock, override and the fleet's aggregates" if view is not None else "clock"
        st.caption(f"Redis OK · this read took {format_latency_ms(health.latency_ms)} ({read}) · "
                   f"refreshes every {REFRESH_S} s · {fmt_ts(reading.now)}")


live_panel()
finish_page(sidebar)
