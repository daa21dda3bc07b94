"""History's notifications section: each event's delivery state, trim gaps, and dead letters with a retry.

Reads only through ``breaker.ops.notify.NotifyStore``; the retry is the store's audited write (operator role).
"""

from __future__ import annotations

import streamlit as st

from breaker.ops import AuditEntry
from breaker.ops.notify import DeadLetter, NotifyStore, delivery_states
from console.access import current_access
from console.shared import audit_trail, fmt_ts, get_target, guarded
from console.text import md_text

SHOWN_EVENTS = 50
SHOWN_DEAD_LETTERS = 50


def notify_store() -> NotifyStore:
    target = get_target()
    return NotifyStore(target.client, key_prefix=target.settings.key_prefix)


def render_notifications(entries: list[AuditEntry]) -> None:
    """The section, or a Redis error in its place (the rest of History stays)."""
    st.header("Notifications")
    guarded("reading the notifications' state", lambda: _render(entries))


def _render(entries: list[AuditEntry]) -> None:
    store = notify_store()
    last_delivered, pending = store.group_position()
    if last_delivered is None:
        st.caption("No notifier has read this audit stream: `vix-breaker notify` sends each entry to webhooks "
                   "(docs/notifications.md).")
        return
    outcomes = store.outcomes()
    for lost in (o for o in outcomes if o.state == "lost"):
        st.error(f"Audit entries never notified ({fmt_ts(lost.at)}, {md_text(lost.event_id)}): "
                 f"{md_text(lost.error)}", icon=":material/error:")
    newest = list(reversed(entries[-SHOWN_EVENTS:]))
    states = delivery_states([e.id for e in newest], outcomes, last_delivered, pending)
    st.dataframe([{"when": fmt_ts(e.at), "what": e.action, "who": e.who, "delivery": states[e.id], "id": e.id}
                  for e in newest], hide_index=True)
    st.caption(f"Delivery of the newest {len(newest)} entries; {len(pending)} read and not yet acknowledged.")
    render_dead_letters(store, store.dead_letters())


def render_dead_letters(store: NotifyStore, letters: list[DeadLetter]) -> None:
    st.subheader("Dead letters")
    if not letters:
        st.caption("No dead letter: every event reached every target that wanted it (or is still being tried).")
        return
    st.dataframe([{"event": d.event_id, "what": d.action, "target": d.target, "tries": d.tries, "last error": d.error,
                   "given up": fmt_ts(d.at)} for d in letters[:SHOWN_DEAD_LETTERS]], hide_index=True)
    access = current_access()
    refusal = access.refusal("notify_retry")
    if refusal:
        st.caption(f"Retrying a dead letter needs the operator role: {md_text(refusal)}")
    for letter in letters[:SHOWN_DEAD_LETTERS]:
        label = f"Retry {md_text(letter.action)} {md_text(letter.event_id)} → {md_text(letter.target)}"
        if st.button(label, key=f"notify_retry_{letter.key}",
                     disabled=not access.may("notify_retry")):
            done = guarded("retrying a notification",
                           lambda letter=letter: store.retry_dead_letter(letter.key, access, audit_trail()))
            if done:
                st.success(f"Queued again for {md_text(letter.target)}: the notifier delivers it next.")
            elif done is False:
                st.info("Already retried or gone.")
