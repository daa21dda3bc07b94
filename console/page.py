"""The page scaffold, the top of the console's helpers: every page script calls ``start_page()`` first and
``finish_page()`` last (page config, sidebar with target, login and health, pending request, override banner).

Not app.py: with a folder named ``pages/`` next to app.py, Streamlit starts a process (and every AppTest run)
in its old multipage mode, which executes a deep-linked page script directly, without app.py, and lists
every file of ``pages/`` as a page. ``start_page()`` leaves that mode and reruns, so app.py's
``st.navigation`` decides from then on. Nothing in ``console/`` imports this module (docs/console.md, "Layers").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from breaker.ops.timefmt import format_latency_ms
from console.access import render_login
from console.approvals import render_pending_request
from console.banners import override_banner
from console.demo_banner import show_demo_banner
from console.shared import HEALTH_KEY, fmt_ts, get_target, last_health, read_clock
from console.text import code_span, md_text

FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"


def set_page_config() -> None:
    """Title, a local favicon and the wide layout. app.py calls it before ``st.navigation`` too: a page's
    ``:material/…:`` icon becomes the favicon unless a page icon is already set, and Streamlit's browser code
    fetches a material favicon from a font CDN (SPEC 6: nothing from the internet to render). The icons in the
    navigation itself are drawn with Streamlit's bundled font."""
    st.set_page_config(page_title="vix-breaker console", page_icon=str(FAVICON), layout="wide")


def console_pages() -> list[Any]:
    """The console's pages, for app.py's ``st.navigation`` (and the fallback below)."""
    return [
        st.Page("pages/live.py", title="Live", icon=":material/monitor_heart:", default=True),
        st.Page("pages/fleet.py", title="Fleet", icon=":material/dns:"),
        st.Page("pages/drills.py", title="Drills", icon=":material/construction:"),
        st.Page("pages/tiers.py", title="Tiers", icon=":material/stacked_line_chart:"),
        st.Page("pages/history.py", title="History", icon=":material/history:"),
        st.Page("pages/demo.py", title="Demo", icon=":material/theaters:"),
    ]


_legacy_mode_left = False


def _leave_legacy_multipage_mode() -> None:
    """When Streamlit ran this page in its ``pages/``-folder mode, switch to navigation mode.

    A first request for a page other than the default never runs app.py, so nothing would call
    ``st.navigation`` and the whole server would keep listing shared.py and figures.py as pages.
    Clearing Streamlit's flag (what ``st.navigation`` does) and rerunning once lets app.py decide.
    Only the first time in a process: that run is a fresh page load with no click to lose (AppTest
    sets the flag again before every run; its later runs draw the page directly, as before).
    Internal attribute: without it (a newer Streamlit) nothing happens.
    """
    global _legacy_mode_left
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        if not _legacy_mode_left:
            _legacy_mode_left = True
            st.rerun()


def start_page() -> Any:
    """Page config and sidebar (target, prefix, access, login); returns the slot for ``finish_page``."""
    _leave_legacy_multipage_mode()
    set_page_config()
    target = get_target()
    show_demo_banner(target)
    if target.embedded:  # on the page itself, not only in the sidebar, which a phone keeps closed
        st.badge("Sandbox: writes open, no worker reads it", color="blue",
                 icon=":material/science:")
    with st.sidebar:
        st.caption("Target")
        st.markdown(code_span(target.display))  # st.code would cut a long URL off at the sidebar's edge
        st.caption("Key prefix")
        st.markdown(code_span(target.settings.key_prefix))
        if target.is_drill_namespace:
            st.badge("drill namespace", color="orange")
        health_slot = st.empty()
        render_login(target)
    st.session_state[HEALTH_KEY] = None  # the page's own clock read refills it
    render_pending_request()
    override_banner()  # every page shows the operator override while one is stored
    return health_slot


def finish_page(slot: Any) -> None:
    """Fill the sidebar's health slot from this run's clock read, reading once if the page did not.

    The sidebar is drawn on full page runs only (Live's 3 s refresh is a fragment), so the badge says
    when it was checked; Live's panel shows its own, current health line.
    """
    if last_health() is None:
        read_clock()
    health = last_health()
    with slot.container():  # a badge does not wrap: the time of the check goes in the caption under it
        if health is not None and health.ok:
            st.badge(f"Redis OK · {format_latency_ms(health.latency_ms)}", color="green",
                     icon=":material/check_circle:")
        else:
            st.badge("Redis unreachable", color="red", icon=":material/cloud_off:")
        if health is not None:
            error = f": {md_text(health.error)}" if health.error else ""
            st.caption(f"checked at {fmt_ts(health.checked_at, time_only=True)} (page load){error}")
