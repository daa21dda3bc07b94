"""Console wiring: one target per process, the sidebar every page shows."""

from __future__ import annotations

import streamlit as st

from breaker import ConfigError, Settings, configure_logging
from breaker.target import Target, connect_target


@st.cache_resource(show_spinner="Connecting to Redis…")
def _target() -> Target:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return connect_target(settings)


def get_target() -> Target:
    """The shared target, or a stopped page naming the bad setting."""
    try:
        return _target()
    except ConfigError as exc:
        st.error(f"Configuration error: {exc}")
        st.stop()


def render_sidebar() -> None:
    target = get_target()
    with st.sidebar:
        st.caption("Target")
        st.code(target.display, language=None)
        st.caption("Key prefix")
        st.code(target.settings.key_prefix, language=None)
        if target.is_drill_namespace:
            st.badge("drill namespace", color="orange")
