"""vix-breaker operator console: navigation and the sidebar shared by every page."""

import streamlit as st

from pages.shared import render_sidebar

st.set_page_config(page_title="vix-breaker console", page_icon=":material/speed:", layout="wide")

page = st.navigation(
    [
        st.Page("pages/live.py", title="Live", icon=":material/monitor_heart:", default=True),
    ]
)
render_sidebar()
page.run()
