"""The Fleet page's scheduled overrides: a timeline of planned windows, the form to plan one, cancel, and the
second operator's approval of a scheduled ``force_calm``; History's table of each window's life.

Every write goes through ``breaker.ops.schedule`` (the right to write, the rules and the audit entry are there);
this module only collects input and shows the schedule, in server time.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from breaker.ops import WriteAccess
from breaker.ops.overrides import OverrideReading
from breaker.ops.roles import SELF_DECLARED, canonical_name
from breaker.ops.schedule import (
    MAX_PLANNED,
    ScheduleReading,
    approval_text,
    approve_window,
    cancel_window,
    parse_when,
    read_schedule,
    schedule_override,
    window_stories,
)
from breaker.override import OverrideMode
from breaker.schedule import Window
from console.access import current_access
from console.approvals import two_person_rule_on
from console.schedule_figures import figure_schedule_timeline
from console.shared import audit_trail, fmt_duration, fmt_ts, get_target, guarded
from console.text import md_text

FLASH = "schedule_flash"


def window_rows(reading: ScheduleReading) -> list[dict[str, Any]]:
    return [{"id": w.id, "mode": w.mode.value, "from": fmt_ts(w.since), "to": fmt_ts(w.until),
             "length": fmt_duration(w.until - w.since), "state": w.state, "approval": approval_text(w), "who": w.who,
             "why": w.why} for w in reading.windows]


def render_schedule(access: WriteAccess, override: OverrideReading | None) -> None:
    """The timeline beside the current override, the windows, approvals, and the schedule / cancel forms."""

    st.subheader("Scheduled overrides")
    if FLASH in st.session_state:
        st.success(st.session_state.pop(FLASH))
    clock = get_target().panic_clock()
    reading = guarded("reading the schedule", lambda: read_schedule(clock))
    if reading is None:
        return
    shown = [w for w in reading.windows if w.until > reading.now - 3600]
    in_force = override.override if override is not None else None
    if shown or in_force is not None:  # nothing planned and nothing on: no empty chart, the caption below says so
        st.plotly_chart(figure_schedule_timeline(shown, reading.now, in_force), key="schedule_timeline")
    st.caption(f"Server time {fmt_ts(reading.now)}. Workers apply a window by themselves, within one refresh "
               "interval of its edges, as an override; an override set by hand takes precedence while it is on.")
    if reading.invalid:
        st.warning(f"{len(reading.invalid)} stored member(s) of the schedule are not windows; workers ignore them "
                   f"and the next write removes them: {md_text('; '.join(reading.invalid))}")
    if shown:
        st.dataframe(window_rows(ScheduleReading(reading.now, tuple(shown), ())), hide_index=True,
                     key="schedule_windows")
    else:
        st.caption("No windows planned.")
    _approvals(access, reading)
    rule = two_person_rule_on()
    longest = float(get_target().settings.max_override_min)
    plan_col, cancel_col = st.columns(2)
    with plan_col.container(border=True):
        st.markdown("**Plan a window**")
        locked = access.refusal("override_schedule") is not None
        mode = OverrideMode(st.radio("Mode", [m.value for m in OverrideMode], key="schedule_mode", horizontal=True,
                                     disabled=locked))
        refusal = schedule_refusal(access, mode, rule)
        if refusal:
            st.caption(f"You cannot schedule {mode.value}: {md_text(refusal)}.")
        start = st.text_input("Window start (server time: ISO 8601, no zone = UTC; or +30s, +15m, +2h)", value="+15m",
                              key="schedule_start", disabled=locked)
        minutes = st.number_input("Window length (min)", min_value=1.0, max_value=longest,
                                  value=min(15.0, longest), step=1.0, format="%g", key="schedule_minutes",
                                  disabled=locked)
        why = st.text_input("Why this window (required, audited)", key="schedule_why", disabled=locked)
        if mode is OverrideMode.FORCE_CALM and rule:
            st.caption("force_calm needs a second verified operator's approval before the window opens; "
                       "unapproved, it does not apply.")
        if st.button("Schedule", key="schedule_submit", type="primary", disabled=bool(refusal)):
            _submit(mode, start, float(minutes), why, rule, longest)
    with cancel_col.container(border=True):
        st.markdown("**Remove a planned window**")
        live = reading.live()
        cancel_refusal = access.refusal("override_schedule_cancel")
        if cancel_refusal:
            st.caption(f"You cannot remove a window: {md_text(cancel_refusal)}.")
        off = not live or bool(cancel_refusal)
        chosen = st.selectbox("Window", [w.id for w in live], key="schedule_cancel_id",
                              format_func=lambda wid: _describe(live, wid), disabled=off)
        cancel_why = st.text_input("Why remove it (required, audited)", key="schedule_cancel_why", disabled=off)
        if st.button("Remove window", key="schedule_cancel", disabled=off) and chosen:
            if not cancel_why.strip():
                st.error("Say why: the reason goes into the audit trail with your name.")
            else:
                done = guarded("cancelling the window", lambda: cancel_window(
                    clock, audit_trail(), _access(), window_id=chosen, why=cancel_why.strip()))
                if done is not None:
                    _flash(f"Window {done.id} cancelled (an override it had put in force ended with it).")
    st.caption(f"At most {MAX_PLANNED} windows planned, none overlapping, each at most {longest:g} min "
               "(BREAKER_MAX_OVERRIDE_MIN). Scheduling, cancelling and each window's start and end are audited.")


def schedule_refusal(access: WriteAccess, mode: OverrideMode, rule: bool) -> str | None:
    """Why this session may not schedule ``mode`` (None: it may): the same ``roles.WRITES`` checks
    ``schedule_override`` makes; a ``force_calm`` window without the rule outside the sandbox is break-glass."""
    if mode is not OverrideMode.FORCE_CALM:
        return access.refusal("override_schedule")
    why = access.refusal("override_schedule_calm")
    if why is None and not rule and access.auth != "sandbox":
        why = access.refusal("break_glass")
    return why


def requested_by(window: Window, access: WriteAccess) -> bool:
    """Whether ``access`` is the window's requester: canonical names, as ``approve_window`` compares them."""
    stored = window.extra.get("requester_canonical")
    name = stored if isinstance(stored, str) and stored else canonical_name(
        (window.requested_by or window.who).removesuffix(SELF_DECLARED))
    return name == access.canonical


def _describe(windows: tuple[Window, ...], window_id: str) -> str:
    window = next((w for w in windows if w.id == window_id), None)
    return window_id if window is None else f"{window.mode.value} from {fmt_ts(window.since)} ({window.id})"


def _access() -> WriteAccess:

    return current_access()


def _submit(mode: OverrideMode, start: str, minutes: float, why: str, rule: bool, longest: float) -> None:
    if not why.strip():
        st.error("Say why: the reason goes into the audit trail with your name.")
        return
    try:
        at, after_s = parse_when(start)
    except ValueError as exc:
        st.error(f"Not done: {md_text(exc)}")
        return
    window = guarded("scheduling the override", lambda: schedule_override(
        get_target().panic_clock(), audit_trail(), _access(), mode=mode, minutes=minutes, why=why.strip(), start=at,
        after_s=after_s, two_person_rule=rule, max_minutes=longest))
    if window is not None:
        waiting = "; it waits for a second operator's approval" if not window.approved else ""
        length = fmt_duration(window.until - window.since)
        _flash(f"{window.mode.value} scheduled from {fmt_ts(window.since)} for {length} (id {window.id}){waiting}.")


def _approvals(access: WriteAccess, reading: ScheduleReading) -> None:
    """Scheduled force_calm windows waiting for approval, each with an Approve button enabled only for a second,
    verified identity with the approver role (``override_window_approve``); otherwise disabled, the reason shown."""
    waiting = [w for w in reading.live() if not w.approved and w.state == "planned" and w.since > reading.now]
    for window in waiting:
        st.warning(f"{md_text(window.requested_by or window.who)} plans force_calm from {fmt_ts(window.since)} for "
                   f"{fmt_duration(window.until - window.since)}: {md_text(window.why)}. Unapproved at its start, it "
                   "does not apply.", icon=":material/group:")
        why_not = access.refusal("override_window_approve")
        if why_not is None and requested_by(window, access):
            why_not = "it is your request: a second person approves it"
        if why_not:
            st.caption(f"Approving needs a verified identity with the approver role, not the requester: "
                       f"{md_text(why_not)}.")
        # the key carries the digest shown: a window changed since is another button, and this click approves nothing
        if st.button("Approve scheduled force_calm", key=f"schedule_approve_{window.id}_{window.digest()}",
                     type="primary", disabled=bool(why_not)):
            done = guarded("approving the window", lambda w=window: approve_window(
                get_target().panic_clock(), audit_trail(), _access(), window_id=w.id, digest=w.digest()))
            if done is not None:
                _flash(f"Window {done.id} approved: force_calm applies from {fmt_ts(done.since)}.")


def render_window_history(entries: list[Any]) -> None:
    """History: each window's life (scheduled, approved, started, skipped, ended, cancelled) from the audit trail."""
    st.header("Scheduled windows")
    stories = window_stories(entries)
    if not stories:
        st.caption("No scheduled override in the history.")
        return
    st.dataframe(
        [{"window": s.id, "mode": s.mode, "planned by": s.who, "why": s.why, "from": fmt_ts(s.since),
          "to": fmt_ts(s.until), "outcome": s.outcome,
          "events": " · ".join(f"{what} {fmt_ts(at, time_only=True)} ({who})" for at, what, who in s.events)}
         for s in stories],
        hide_index=True, key="history_windows",
    )
    st.caption("Starts, ends and skips are written by the first worker round trip that sees them (who: the planner).")


def _flash(message: str) -> None:
    st.session_state[FLASH] = message
    st.rerun()
