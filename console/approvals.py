"""The two-person rule in the console: a pending ``force_calm`` request on every page, and its approval.

The rule itself lives in ``breaker.ops.approvals``; an Overrides page calls ``set_override_or_request`` with
``two_person_rule_on()``, and every page calls ``render_pending_request()`` (from ``start_page``).
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from breaker.ops.approvals import approve_force_calm, pending_request, two_person_rule_applies
from console.access import current_access
from console.shared import audit_trail, fmt_duration, get_target, guarded
from console.text import md_text

FLASH = "approvals_flash"
SHOWN = "approvals_shown_request"  # the request whose Approve button this session last saw


def two_person_rule_on() -> bool:
    """BREAKER_TWO_PERSON_RULE, or by default: on for a real target, off in the sandbox."""
    target = get_target()
    return two_person_rule_applies(target.settings.two_person_rule, embedded=target.embedded)


def render_pending_request() -> None:
    """Show a waiting force_calm request to operators: the requester sees it wait, a verified second person
    with the approver role gets the Approve button (bound to the request's id and digest). Read-only
    visitors see nothing."""
    if FLASH in st.session_state:
        st.success(st.session_state.pop(FLASH), icon=":material/how_to_reg:")
    access = current_access()
    if not access.allowed:
        return
    target = get_target()
    clock = target.panic_clock()
    try:
        request = pending_request(clock)
    except Exception as exc:  # the page shows its own Redis error; say only what this part could not check
        st.caption(f"Pending force_calm requests not checked: {md_text(type(exc).__name__)}")
        return
    _say_why_a_button_went_away(request)
    if request is None:
        return
    lapses = f"lapses in {fmt_duration(request.left_s)}"
    if request.requester_canonical == access.canonical:
        st.info(f"Your force_calm request ({request.minutes:g} min) waits for a second operator's approval; {lapses}.",
                icon=":material/hourglass_top:")
        return
    st.warning(f"{md_text(request.requester)} asks to force calm on every worker for {request.minutes:g} min: "
               f"{md_text(request.why)} ({lapses}; request {md_text(request.id)}, digest {md_text(request.digest)}).",
               icon=":material/group:")
    why_not = access.refusal("force_calm_approve")
    if why_not is not None:
        st.caption(f"Approving needs a verified identity with the approver role: {md_text(why_not)}.")
        return
    st.session_state[SHOWN] = (request.id, request.requester, request.minutes, time.monotonic() + request.left_s)
    if st.button("Approve force_calm", key=f"approve_force_calm_{request.id}_{request.digest}", type="primary"):
        override = guarded("approving force_calm", lambda: approve_force_calm(
            clock, audit_trail(), current_access(), request_id=request.id, digest=request.digest,
            max_minutes=target.settings.max_override_min))
        if override is not None:
            st.session_state[FLASH] = f"force_calm is on for {request.minutes:g} min: {override.who}."
            st.rerun()


def _say_why_a_button_went_away(request: Any) -> None:
    """An Approve button this session showed is gone: say whether the request lapsed (nobody approved it in
    time) or was settled elsewhere (approved by another operator or withdrawn), instead of it just vanishing."""
    shown = st.session_state.get(SHOWN)
    if shown is None or (request is not None and request.id == shown[0]):
        return
    del st.session_state[SHOWN]
    _, requester, minutes, lapses_at = shown
    if time.monotonic() >= lapses_at - 1:
        st.info(f"The force_calm request of {md_text(requester)} ({minutes:g} min) lapsed: nobody approved it "
                "within its time, so nothing was set. The requester can ask again.", icon=":material/timer_off:")
    else:
        st.info(f"The force_calm request of {md_text(requester)} ({minutes:g} min) is no longer waiting: another "
                "operator approved it or it was withdrawn (see the banner and History).", icon=":material/info:")
