"""Fleet: the fleet's counts from the workers' aggregates (the same cost at any size), their heartbeats a page at a
time (a server-side cursor: the page never reads the whole hash); the override controls."""

import streamlit as st

from breaker import AdaptivePanicQuota
from breaker.ops.fleet import disagrees, expected_tier
from breaker.ops.fleet_pages import read_page
from breaker.ops.timefmt import format_latency_ms
from console.access import current_access
from console.figures import figure_tier_distribution
from console.fleet_data import read_fleet_summary
from console.fleet_view import (
    SORT_ORDERS,
    STATE_LABELS,
    STATES,
    WorkerFilter,
    disagreement_rows,
    filter_workers,
    live_workers,
    skew_text,
    sort_workers,
    tier_matrix,
    worker_rows,
)
from console.override_controls import render_override_controls
from console.page import finish_page, start_page
from console.schedule_controls import render_schedule
from console.shared import access_notice, fmt_ts, get_target, last_health, show_redis_error

REFRESH_S = 3
VIEW_KEY = "fleet_view"
CURSOR_KEY = "fleet_cursor"
PAGE_ROWS = 1000  # heartbeats per page (one HSCAN COUNT 1000: about a millisecond of server time)
WORKER_EXAMPLE = """\
from breaker import Settings, VIXCircuitBreaker

settings = Settings.from_env()                        # the variables below; a bad value raises ConfigError
breaker = VIXCircuitBreaker.from_settings(settings)   # client from REDIS_URL: 50 ms timeouts, retries off

ttl, mode = breaker.get_ttl(60, vix_status, {"league": "Ligue 1", "competition": "Le Classique"})
cache.set(market_key, odds, ttl=ttl)                  # ttl 0 means: do not cache
"""

sidebar = start_page()
st.title("Fleet")


def empty_state() -> None:
    st.info("No worker reports heartbeats under this key prefix yet. A worker reports from its first `get_ttl` "
            "call, once per refresh interval, when it uses the same Redis and key prefix as this console (both "
            "in the sidebar). The worker example from the README:", icon=":material/dns:")
    st.code(WORKER_EXAMPLE, language="python")


@st.fragment(run_every=REFRESH_S)
def fleet_panel() -> None:
    view = read_fleet_summary()
    st.session_state[VIEW_KEY] = view  # the override controls below use this run's reading, not a second read
    health = last_health()
    if view is None:
        show_redis_error("reading the fleet")
        return
    counts = view.counts
    if not view.known and not view.fields_total:
        empty_state()
        return
    cols = st.columns(6)
    cols[0].metric("Workers", view.known, help="Seen in the last window or the one before (stale ones included).")
    for col, state in zip(cols[1:5], STATES):
        col.metric(STATE_LABELS[state].capitalize(), counts[state])
    cols[5].metric("Answers/s", f"{view.answers_per_s:,.1f}", help="Workers that are not stale.")
    skew = skew_text(view.skew_min, view.skew_max)
    source = "the heartbeats" if view.from_beats else "the workers' aggregates"
    st.caption(f"Counts from {source} of the last {max(view.until - view.since, 0):.0f} s{skew}")
    _alerts(view, counts)
    matrix = tier_matrix(view.tiers)
    if any(any(row.values()) for row in matrix.values()):
        st.plotly_chart(figure_tier_distribution(matrix), key="fleet_tiers_chart")
    else:
        st.caption("No worker answered a panic tier in its last interval (calm answers and answers under an "
                   "override report none): no tier distribution to draw.")
    _worker_table(view)
    if health is not None:
        st.caption(f"Redis OK · this read took {format_latency_ms(health.latency_ms)} (clock, override, the "
                   f"aggregates) · refreshes every {REFRESH_S} s · {fmt_ts(view.now)} (server time)")


def _alerts(view, counts) -> None:
    if view.disagreeing:
        st.warning(f"{view.disagreeing} worker(s) answer a tier the clock does not imply: a worker on another "
                   "key prefix or Redis, a stale build, or a clock it cannot read. Compare their version and "
                   "settings (the table below lists those of the page shown):", icon=":material/compare_arrows:")
    if counts["fail_safe"]:
        st.error(f"{counts['fail_safe']} worker(s) answered fail-safe (0, PANIC_FULL) in their last interval: "
                 "their Redis round trip failed. See “last error” in the table.", icon=":material/cloud_off:")
    if counts["stale"]:
        st.warning(f"{counts['stale']} worker(s) stale: no heartbeat for 3 of their intervals (stopped, hung, or "
                   "cut off from Redis). They are dropped after 60 s.", icon=":material/hourglass_disabled:")


def _go_to(cursor: int) -> None:
    """A page button's callback: the next run reads the page at ``cursor`` (the server's HSCAN cursor)."""
    st.session_state[CURSOR_KEY] = cursor


def _worker_table(view) -> None:
    cursor = st.session_state.get(CURSOR_KEY, 0)
    target = get_target()
    page = read_page(target.panic_clock(), cursor=cursor, count=PAGE_ROWS,
                     deadline_s=target.settings.operator_read_timeout_s)
    workers = live_workers(page.workers)
    quota = AdaptivePanicQuota()
    odd = [w for w in workers if disagrees(w, view.reading, view.override, quota)]
    if odd:
        st.dataframe(disagreement_rows(
            odd, lambda beat, stakes: expected_tier(beat, stakes, view.reading, view.override, quota),
            view.now), hide_index=True, key="fleet_disagreeing")
    f1, f2, f3, f4 = st.columns([2, 2, 1, 1])
    states = f1.multiselect("State", STATES, default=list(STATES), format_func=STATE_LABELS.get,
                            key="fleet_states")
    text = f2.text_input("Worker, host, error or version contains", key="fleet_text")
    order = f3.selectbox("Sort by", SORT_ORDERS, key="fleet_sort")
    errors_only = f4.checkbox("With an error only", key="fleet_errors_only")
    shown = sort_workers(filter_workers(workers, WorkerFilter(frozenset(states), text, errors_only)), order)
    st.dataframe(worker_rows(shown, view.now), hide_index=True, key="fleet_workers")
    where = "the first page" if not cursor else "this page"
    st.caption(f"{len(shown)} of the {len(workers)} workers of {where} shown ({view.fields_total:,} heartbeats "
               f"stored, {PAGE_ROWS:,} per page in the server's scan order). Click a column header to sort by it.")
    b1, b2 = st.columns(2)
    if page.cursor:
        b1.button("Next page", key="fleet_next_page", icon=":material/navigate_next:", on_click=_go_to,
                  args=(page.cursor,))
    if cursor:
        b2.button("First page", key="fleet_first_page", icon=":material/first_page:", on_click=_go_to, args=(0,))
    if page.invalid:
        st.warning(f"{len(page.invalid)} field(s) of the workers hash are not heartbeats this console can read "
                   "(another format version?):", icon=":material/help:")
        st.dataframe([{"field": name, "why": why} for name, why in sorted(page.invalid.items())], hide_index=True)


fleet_panel()

st.header("Overrides")
access = current_access()
access_notice(access)
view = st.session_state.get(VIEW_KEY)
render_override_controls(access, view.override if view is not None else None)
render_schedule(access, view.override if view is not None else None)
finish_page(sidebar)
