"""vix-breaker operator console: navigation. Each page draws the shared sidebar (see pages/shared.py)."""

import streamlit as st

from pages.shared import console_pages

st.navigation(console_pages()).run()
