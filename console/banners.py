"""The override banner every page shows while an operator override is stored (SPEC sections 6 and 7).

``start_page()`` calls ``override_banner()``: a fragment that refreshes itself, so a page left open shows an
override set elsewhere, its time left, and how many workers honour it. It reads the override key alone
(one round trip) and the fleet's heartbeats only while an override is stored. Who and why are operators'
words and a stored value that does not parse is anybody's bytes: both are shown with ``st.text`` /
``st.code``, never as markdown.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from breaker.ops.fleet import read_fleet
from breaker.ops.overrides import OverrideReading, override_key, read_override
from breaker.override import InvalidOverride, parse_override
from console.fleet_view import honouring
from console.shared import fmt_duration, fmt_ts, get_target

BANNER_REFRESH_S = 5
MAX_RAW_SHOWN = 2000
MODE_EFFECTS = {
    "force_full": "every answer is (0, PANIC_FULL), calm or panic",
    "force_calm": "panic answers are (base TTL, NORMAL) and do not feed the clock",
}


def override_banner() -> None:
    """Draw the banner (nothing when no override is stored)."""
    _banner()


@st.fragment(run_every=BANNER_REFRESH_S)
def _banner() -> None:
    target = get_target()
    clock = target.panic_clock()
    try:
        reading = read_override(clock, target.settings.max_override_min * 60)
    except Exception as exc:  # the page shows its own Redis error; the banner only says what it cannot know
        st.caption(f"Override: unknown, Redis did not answer ({type(exc).__name__}).")
        return
    if reading.raw is None:
        return
    if reading.override is None:
        _unusable(reading, override_key(clock))
        return
    try:
        workers = read_fleet(clock, interval_s=target.settings.refresh_interval_s, prune=False,
                             max_override_s=target.settings.max_override_min * 60).workers
    except Exception:
        workers = None
    _active(reading, workers)


def override_banner_text(reading: OverrideReading, honour: tuple[int, int] | None) -> str:
    """The banner's sentence: mode, effect, time left, end, and the honour count. Only the mode (an enum),
    times and counts go in it, so it is safe as markdown; who and why are drawn as text beside it."""
    override = reading.override
    mode = override.mode.value
    text = (f"Override **{mode}** is on: {MODE_EFFECTS[mode]}. {fmt_duration(reading.left_s)} left "
            f"(until {fmt_ts(override.until, time_only=True)}).")
    if reading.stored_until is not None:
        text += (f" Its stored end is {fmt_ts(reading.stored_until, time_only=True)}, but workers honour an override "
                 f"at most {(override.until - override.since) / 60:g} min from its start (BREAKER_MAX_OVERRIDE_MIN).")
    if honour is None:
        return text + " Workers honouring it: unknown (the heartbeats could not be read)."
    honoured, reporting = honour
    if reporting == 0:
        return text + " No worker has reported within its stale limit, so nobody has confirmed it yet."
    return text + f" {honoured} of {reporting} reporting workers already honour it."


def _active(reading: OverrideReading, workers: list[Any] | None) -> None:
    override = reading.override
    honour = None if workers is None else honouring(workers, override.mode.value)
    text = override_banner_text(reading, honour)
    with st.container(border=True, key="override_banner"):
        if override.mode.value == "force_full":
            st.error(text, icon=":material/block:")
        else:
            st.warning(text, icon=":material/pause_circle:")
        st.text(f"by: {override.who}\nwhy: {override.why}")


def _unusable(reading: OverrideReading, key: str) -> None:
    raw = reading.raw
    shown = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if len(shown) > MAX_RAW_SHOWN:
        shown = shown[:MAX_RAW_SHOWN] + f"… ({len(shown)} characters in all)"
    with st.container(border=True, key="override_banner"):
        if reading.invalid_reason == "expired":
            st.info("A stored override has run out: workers ignore it. Its value:", icon=":material/timer_off:")
        elif _parses(raw):  # well formed, but not in force for the workers (starts ahead, or past their cap)
            st.warning("The stored override is not in force: workers ignore it and log INVALID_PANIC_OVERRIDE. "
                       "Clear it on the Fleet page. Why, the key, and its raw value:", icon=":material/warning:")
            st.text(f"reason: {reading.invalid_reason}")
        else:
            st.error("The stored override does not parse: workers ignore it (never read as force_calm) and log "
                     "INVALID_PANIC_OVERRIDE. Clear it on the Fleet page. Why it does not parse, the key, "
                     "and its raw value:", icon=":material/error:")
            st.text(f"reason: {reading.invalid_reason}")
        st.text(f"key: {key}")
        st.code(shown, language=None, wrap_lines=True)


def _parses(raw: Any) -> bool:
    try:
        parse_override(raw)
    except (InvalidOverride, TypeError):
        return False
    return True
