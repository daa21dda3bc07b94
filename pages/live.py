"""Live: what the workers answer right now, per stakes class."""

import time

import streamlit as st

from breaker import AdaptivePanicQuota
from breaker.status import class_statuses
from pages.shared import get_target

st.title("Live")
base_ttl = st.number_input("Base TTL (s)", min_value=0, max_value=86400, value=60, step=5, key="live_base_ttl")


@st.fragment(run_every=3)
def live_panel() -> None:
    target = get_target()
    try:
        reading = target.panic_clock().read(time.time())
    except Exception as exc:
        st.error(f"Redis unreachable: {exc}")
        return
    if reading.exists:
        st.metric("Panic duration", f"{(reading.duration_s or 0) / 60:.1f} min")
        st.caption(f"Panic start: {reading.start}")
    else:
        st.success("No panic clock: workers answer the base TTL.")
    for column, status in zip(st.columns(3), class_statuses(reading, int(base_ttl), AdaptivePanicQuota())):
        with column:
            st.subheader(status.importance.value)
            st.metric("Mode", status.mode.value)
            st.metric("Tier", status.tier)
            st.metric("TTL", f"{status.ttl} s")


live_panel()
