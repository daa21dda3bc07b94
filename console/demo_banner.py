"""Every page says when a demo is playing; under ``make demo`` the first page view starts the fleet."""

from __future__ import annotations

import streamlit as st

from breaker.ops.demo import InvalidScenario, autoplay_scenario, read_marker
from breaker.ops.target import Target

from .demo_fleet import start_fleet
from .text import md_text

BANNER_REFRESH_S = 2  # the Demo page's panel refreshes as often


def show_demo_banner(target: Target) -> None:
    """Start ``BREAKER_DEMO``'s fleet once (sandbox only); then one HGETALL of the marker and a banner."""
    try:
        autoplay = autoplay_scenario()
    except InvalidScenario as exc:
        st.error(f"BREAKER_DEMO: {md_text(exc)}")
        autoplay = None
    if autoplay and target.embedded:
        start_fleet(target, scenario=autoplay)  # once per console process: no-op while it runs
    _banner(target)


@st.fragment(run_every=BANNER_REFRESH_S)
def _banner(target: Target) -> None:
    """Refreshed like the Demo page's own panel, so every page shows the scenario minute the Demo page shows
    (a banner drawn once at page load would keep the minute of that moment)."""
    try:
        marker = read_marker(target.client, target.settings.key_prefix)
    except Exception:
        return  # the page's own clock read reports Redis trouble
    if marker is None:
        return
    what = {"playing": "Demo playing", "paused": "Demo paused", "starting": "Demo fleet starting"}.get(
        marker.state, "Demo fleet idle")
    detail = (f": {md_text(marker.title or marker.scenario)} at {marker.speed:g}×, scenario minute "
              f"{marker.minute:.0f} of {marker.total_minutes:.0f} ({md_text(marker.phase)})"
              if marker.state in ("playing", "paused") else "")
    st.info(f"{what}{detail}. {marker.workers} simulated workers: the panic, the workers and the backend load "
            "on these pages are a simulation (see Demo).", icon=":material/theaters:")
