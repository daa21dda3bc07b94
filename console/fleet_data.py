"""The fleet read for pages, timed: ``read_summary`` (the aggregates: the same cost at any fleet size); the
Fleet page's worker table reads its heartbeats a page at a time (``breaker.ops.fleet_pages``).

Its timing is the sidebar's Redis health for the page (as ``read_clock`` is elsewhere), so a page that
reads the fleet makes no second round trip for the badge.
"""

from __future__ import annotations

import time

import streamlit as st

from breaker.ops.fleet_summary import FleetSummary, read_summary
from console.shared import HEALTH_KEY, Health, get_target


def read_fleet_summary() -> FleetSummary | None:
    """One timed, deadline-bounded read of the fleet's summary (clock, override, epoch, the aggregates); None
    (and an unhealthy Health) when Redis fails."""
    target = get_target()
    checked_at = time.time()
    began = time.perf_counter()
    try:
        view = read_summary(target.panic_clock(), interval_s=target.settings.refresh_interval_s,
                            deadline_s=target.settings.operator_read_timeout_s,
                            max_override_s=target.settings.max_override_min * 60)
    except Exception as exc:
        st.session_state[HEALTH_KEY] = Health(False, _ms_since(began), f"{type(exc).__name__}: {exc}", checked_at)
        return None
    st.session_state[HEALTH_KEY] = Health(True, _ms_since(began), checked_at=view.now)
    return view


def _ms_since(began: float) -> float:
    return (time.perf_counter() - began) * 1000.0
