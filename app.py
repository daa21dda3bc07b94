"""vix-breaker operator console: navigation. Each page draws the shared sidebar (see console/shared.py)."""

import streamlit as st

from console.shared import console_pages

st.navigation(console_pages()).run()
