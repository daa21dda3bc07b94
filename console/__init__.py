"""The Streamlit console's own helpers (sidebar, session state, figures); pages/ holds only page scripts."""
