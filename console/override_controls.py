"""The Fleet page's override controls: set, extend and clear ``force_full`` / ``force_calm``.

Every write goes through ``breaker.ops.overrides`` (the right to write is checked there, and each write
lands atomically with its audit entry); this module only collects the operator's input. Setting
``force_calm`` goes through ``submit_force_calm``, the one place where a "request a second operator's
approval" step slots in (the two-person rule of SPEC section 6) without touching the rest.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from breaker.ops import WriteAccess
from breaker.ops.approvals import pending_request, request_force_calm, set_override_or_request
from breaker.ops.overrides import (
    NoActiveOverride,
    OverrideReading,
    clear_override,
    extend_override,
    read_override,
    set_override,
)
from breaker.override import Override, OverrideMode
from console.access import current_access
from console.approvals import two_person_rule_on
from console.shared import audit_trail, fmt_duration, get_target, guarded
from console.text import md_text

FLASH = "overrides_flash"
MODE_HELP = {
    OverrideMode.FORCE_FULL: "force_full: every call, calm or panic, answers (0, PANIC_FULL). For a known data "
                             "incident or a drill.",
    OverrideMode.FORCE_CALM: "force_calm: panic calls answer (base TTL, NORMAL) and stop feeding the clock, which "
                             "then ends after its calm period. For a signal stuck in panic.",
}


def max_override_min() -> float:
    """``BREAKER_MAX_OVERRIDE_MIN``: the longest override (and extension) an operator may set."""
    return float(get_target().settings.max_override_min)


def submit_force_full(minutes: float, why: str) -> Override | None:
    return _set(OverrideMode.FORCE_FULL, minutes, why)


def submit_force_calm(minutes: float, why: str) -> Override | None:
    """Under the two-person rule (on by default for a real target) a request that a second verified operator
    approves on any page; otherwise a direct, audited set. Returns the override only when it was set."""

    if not two_person_rule_on():
        return guarded("setting force_calm", lambda: set_override_or_request(
            get_target().panic_clock(), audit_trail(), current_access(), mode=OverrideMode.FORCE_CALM,
            minutes=minutes, why=why, two_person_rule=False, max_minutes=max_override_min(),
            sandbox=get_target().embedded))
    request = guarded("requesting force_calm", lambda: request_force_calm(
        get_target().panic_clock(), audit_trail(), current_access(), minutes=minutes, why=why,
        max_minutes=max_override_min()))
    if request is not None:
        _flash(f"force_calm requested for {minutes:g} min: it is set when a second verified operator approves it "
               f"(the request lapses in {fmt_duration(request.left_s)}).")
    return None


SUBMIT = {OverrideMode.FORCE_FULL: submit_force_full, OverrideMode.FORCE_CALM: submit_force_calm}


def _set(mode: OverrideMode, minutes: float, why: str) -> Override | None:
    return guarded(f"setting {mode.value}", lambda: set_override(
        get_target().panic_clock(), audit_trail(), current_access(), mode=mode, minutes=minutes, why=why,
        max_minutes=max_override_min()))


def render_override_controls(access: WriteAccess, reading: OverrideReading | None) -> None:
    """Set / extend / clear, each with a reason; ``reading`` is the override as the page last read it
    (None when Redis did not answer)."""
    if FLASH in st.session_state:
        st.success(st.session_state.pop(FLASH))
    if reading is None:  # the page's own read failed (it said so): one more try, silently
        try:
            reading = read_override(get_target().panic_clock(), max_override_min() * 60)
        except Exception:
            st.caption("The override cannot be read while Redis does not answer (see above): these controls come "
                       "back when it does. Workers keep honouring whatever override they last read.")
            return
    locked = not access.allowed
    longest = max_override_min()
    on = reading is not None and reading.override is not None
    stored = reading is not None and reading.raw is not None
    st.caption(f"Workers honour an override within one refresh interval; every override ends by itself, after at "
               f"most {longest:g} min (BREAKER_MAX_OVERRIDE_MIN). Each change is audited with your reason.")

    set_col, change_col = st.columns(2)
    with set_col.container(border=True):
        st.subheader("Set an override")
        mode = OverrideMode(st.radio("Mode", [m.value for m in OverrideMode], key="overrides_mode",
                                     horizontal=True, disabled=locked))
        st.caption(MODE_HELP[mode])
        calm_refusal = _force_calm_refusal(access) if mode is OverrideMode.FORCE_CALM and not locked else None
        if calm_refusal:
            st.caption(f"You cannot set or request force_calm: {md_text(calm_refusal)}.")
        minutes = st.number_input("Length (min)", min_value=1.0, max_value=longest, value=min(15.0, longest),
                                  step=1.0, format="%g", key="overrides_minutes", disabled=locked)
        why = st.text_input("Why (required, goes into the audit trail)", key="overrides_why", disabled=locked)
        if on:
            st.caption(f"Setting replaces the {reading.override.mode.value} override that is on.")
        if st.button(f"Set {mode.value}", key="overrides_set", type="primary", disabled=locked or bool(calm_refusal)) \
                and _reason_given(why):
            done = SUBMIT[mode](float(minutes), why.strip())
            if done is not None:
                _flash(f"Override {done.mode.value} set for {fmt_duration(done.until - done.since)}.")

    waiting = None if locked else _waiting_request()
    with change_col.container(border=True):
        st.subheader("Extend or clear")
        if on:
            st.caption(f"{reading.override.mode.value} is on, {fmt_duration(reading.left_s)} left.")
        elif stored:
            st.caption("A stored override that workers ignore: clear it.")
        else:
            st.caption("No override is on.")
        if waiting:
            st.caption("A force_calm request is waiting for approval: Clear override withdraws it too.")
        stored = stored or waiting
        more = st.number_input("Extend by (min)", min_value=1.0, max_value=longest, value=min(15.0, longest),
                               step=1.0, format="%g", key="overrides_extend_minutes",
                               disabled=locked or not on)
        change_why = st.text_input("Why (required)", key="overrides_change_why", disabled=locked or not stored)
        e, c = st.columns(2)
        if e.button("Extend", key="overrides_extend", disabled=locked or not on) and _reason_given(change_why):
            extended = _extend(float(more), change_why.strip())
            if extended is not None:
                _flash(f"Override {extended.mode.value} extended by {more:g} min.")
        if c.button("Clear override", key="overrides_clear", disabled=locked or not stored) \
                and _reason_given(change_why):
            cleared = guarded("clearing the override", lambda: clear_override(
                get_target().panic_clock(), audit_trail(), current_access(), why=change_why.strip()))
            if cleared is not None:
                _flash(("Override cleared: workers answer on their own again within one interval."
                        if cleared else "There was no override to clear.")
                       + (" The waiting force_calm request was withdrawn." if waiting else ""))


def _waiting_request() -> bool:
    """Whether a force_calm request waits (clearing withdraws it); False when Redis does not say."""
    try:
        return pending_request(get_target().panic_clock()) is not None
    except Exception:  # the page shows its own Redis error
        return False


def _force_calm_refusal(access: WriteAccess) -> str | None:
    """Why this session may not set force_calm here: under the two-person rule a request needs a verified name;
    without it, outside the sandbox, a direct set is break-glass (a verified admin)."""
    from console.approvals import two_person_rule_on  # console.approvals imports this package's helpers

    if two_person_rule_on():
        return access.refusal("force_calm_request")
    return None if access.auth == "sandbox" else access.refusal("break_glass")


def _extend(minutes: float, why: str) -> Any:

    def extend() -> Override | None:
        try:
            return extend_override(get_target().panic_clock(), audit_trail(), current_access(), minutes=minutes,
                                   why=why, max_minutes=max_override_min(), two_person_rule=two_person_rule_on(),
                                   sandbox=get_target().embedded)
        except NoActiveOverride:
            st.warning("No override is on any more (it ended or was cleared): nothing was extended.")
            return None

    return guarded("extending the override", extend)


def _reason_given(why: str) -> bool:
    if why.strip():
        return True
    st.error("Say why: the reason goes into the audit trail with your name.")
    return False


def _flash(message: str) -> None:
    st.session_state[FLASH] = message
    st.rerun()
