"""vix-breaker operator console: navigation. Each page draws the shared sidebar (see pages/shared.py)."""

import streamlit as st

page = st.navigation(
    [
        st.Page("pages/live.py", title="Live", icon=":material/monitor_heart:", default=True),
        st.Page("pages/drills.py", title="Drills", icon=":material/construction:"),
        st.Page("pages/tiers.py", title="Tiers", icon=":material/stacked_line_chart:"),
        st.Page("pages/history.py", title="History", icon=":material/history:"),
    ]
)
page.run()
