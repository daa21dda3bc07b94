"""vix-breaker operator console: navigation. Each page draws the shared sidebar (see console/page.py)."""

import streamlit as st

from console.page import console_pages

st.navigation(console_pages()).run()
