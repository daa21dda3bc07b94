"""Live's per-class cards: what the workers answer first, the clock's tier beside it under an override.

SPEC section 6, "Truth (v3)": an operator reads the cards, not a note under them. The answers come from
``breaker.ops.status.worker_answers`` (the CLI's ``status`` uses the same function).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from breaker.ops.status import ClassAnswer
from breaker.policy import ALERT_OF_TIER
from console.shared import fmt_duration

TIER_COLOURS = {0: "green", 1: "red", 2: "orange", 3: "violet", 4: "blue"}
TIER_ADVICE = {
    4: "A panic this long looks like a new market regime.",
    3: "The panic has lasted long enough to review the markets.",
}


def stakes_label(answer: ClassAnswer) -> str:
    return answer.importance.value.replace("_", " ")


def tier_banner_text(answers: Sequence[ClassAnswer]) -> str | None:
    """The tier 3/4 banner, naming the stakes classes at that tier (by the clock: an override does not stop
    the panic from ageing); None below tier 3."""
    top = max(a.clock.tier for a in answers)
    if top < 3:
        return None
    named = " and ".join(stakes_label(a) for a in answers if a.clock.tier == top)
    text = f"Tier {top}: {ALERT_OF_TIER[top]} for {named}. {TIER_ADVICE[top]}"
    forced = {a.overridden_by.value for a in answers if a.overridden_by is not None}
    if forced:
        text += f" Workers answer the {', '.join(sorted(forced))} override meanwhile."
    return text


def show_tier_banner(answers: Sequence[ClassAnswer]) -> None:
    text = tier_banner_text(answers)
    if text is None:
        return
    if text.startswith("Tier 4"):
        st.error(text, icon=":material/crisis_alert:")
    else:
        st.warning(text, icon=":material/warning:")


def disagreement_text(answer: ClassAnswer) -> str | None:
    if not answer.reported_tiers:
        return None
    told = ", ".join(f"{n} worker{'s' if n != 1 else ''} tier {tier}" for tier, n in answer.reported_tiers.items())
    neither = "the override's answer nor the clock's" if answer.overridden_by else "the clock's tier"
    return f"Heartbeats disagree: {told}, not {neither}."


def show_class_card(answer: ClassAnswer) -> None:
    """One stakes class: the answer (mode, TTL) first; under an override, the clock's tier "without the
    override"; heartbeats that report neither; the time to the clock's next tier."""
    with st.container(border=True):
        st.subheader(stakes_label(answer))
        if answer.overridden_by is not None:
            st.badge(f"{answer.overridden_by.value} override", color="red" if answer.tier else "orange")
        else:
            st.badge(f"tier {answer.tier}", color=TIER_COLOURS[answer.tier])
        st.metric("Mode", answer.mode.value)
        st.metric("TTL", f"{answer.ttl} s")
        if answer.overridden_by is not None:
            clock = answer.clock
            st.caption(f"Without the override: tier {clock.tier} · {clock.mode.value} · TTL {clock.ttl} s")
        disagreement = disagreement_text(answer)
        if disagreement:
            st.warning(disagreement, icon=":material/error:")
        nxt = answer.minutes_to_next_tier
        st.metric("Next tier in", "—" if nxt is None else fmt_duration(nxt * 60))
