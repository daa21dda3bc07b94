"""vix-breaker operator console: navigation. Each page draws the shared sidebar (see console/page.py)."""

import streamlit as st

from console.page import console_pages, set_page_config

set_page_config()  # before the navigation: a local favicon, never a page icon fetched from a CDN
st.navigation(console_pages()).run()
