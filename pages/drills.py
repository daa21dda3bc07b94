"""Drills: start and end simulated panics, clear a zombie clock, prove fail-safe and first-writer-wins."""


import streamlit as st

from breaker.ops import end_panic, force_clear, start_panic, zombie_verdict
from breaker.ops.actions import MIN_CLEAR_REASON_CHARS, run_failsafe_drill, run_multi_worker_drill
from breaker.ops.timefmt import format_latency_ms, latency_ms
from console.access import current_access
from console.page import finish_page, start_page
from console.shared import (
    access_notice,
    audit_trail,
    drill_client,
    fmt_duration,
    fmt_ts,
    get_target,
    guarded,
    observed_caption,
    read_clock,
    show_audit_error,
    show_redis_error,
    stale_min_input,
)
from console.text import md_text

CLEAR_OPEN = "drills_clear_open"
CLEAR_KEEP = "drills_clear_keep"
FLASH = "drills_flash"


def _keep_clear_dialog() -> None:
    """Callback of the dialog's own widgets: the run they trigger keeps the dialog open."""
    st.session_state[CLEAR_KEEP] = True


sidebar = start_page()
# A dialog dismissed with x or Esc leaves no trace in session state: close it on every full run that the
# dialog's own widgets did not trigger, so it does not come back with the next click elsewhere.
if not st.session_state.pop(CLEAR_KEEP, False):
    st.session_state[CLEAR_OPEN] = False
st.title("Drills")


def server_now() -> float:
    """Writes are stamped in the server's time, as workers measure (the CLI does the same): a console host
    whose clock is off would otherwise start a drill hours back or ahead."""
    return get_target().panic_clock().server_now()


target = get_target()
access = current_access()
access_notice(access)
locked = not access.allowed
if FLASH in st.session_state:
    st.success(st.session_state.pop(FLASH))

reading = read_clock()
if reading is None:
    show_redis_error("reading the panic clock")
elif reading.exists:
    st.info(f"A panic clock is running: started {fmt_ts(reading.start)}, "
            f"{fmt_duration(reading.duration_s)} ago.", icon=":material/timer:")

st.header("Simulated panic")
c1, c2, c3 = st.columns(3)
backdate_min = c1.number_input("Back-date start by (min)", min_value=0.0, max_value=10_000.0, value=0.0,
                               step=1.0, key="drills_backdate")
hold_min = c2.number_input("Hold for (min)", min_value=1.0, max_value=1440.0, value=15.0, step=1.0,
                           key="drills_hold")
why = c3.text_input("Why (goes into the audit trail)", value="drill", key="drills_reason")
overwrite = st.checkbox("Overwrite a running panic", key="drills_overwrite", disabled=locked)
b1, b2 = st.columns(2)
if b1.button("Start panic", key="drills_start", type="primary", disabled=locked):
    result = guarded("starting the panic", lambda: start_panic(
        target.panic_clock(), audit_trail(), current_access(), now=server_now(), why=why,
        backdate_s=backdate_min * 60.0, hold_s=int(hold_min * 60), overwrite=overwrite,
    ))
    if result is not None and result.started:
        st.session_state[FLASH] = (f"Panic started {backdate_min:g} min ago, held {hold_min:g} min: "
                                   f"fleet tier {result.tier}.")
        st.rerun()
    elif result is not None:
        running = result.running
        since = fmt_ts(running.start) if running is not None and running.start else "an unreadable start"
        st.warning(f"A panic is already running (since {since}); nothing was written. "
                   "Tick “Overwrite a running panic” to replace it.")
if b2.button("End panic", key="drills_end", disabled=locked):
    ended = guarded("ending the panic", lambda: end_panic(
        target.panic_clock(), audit_trail(), current_access(), now=server_now(), why=why))
    if ended is not None:
        st.session_state[FLASH] = "Panic clock deleted." if ended else "There was no panic clock to end."
        st.rerun()

st.header("Zombie clock")
stale_min = stale_min_input(st, "drills_stale_min", "Zombie threshold: not refreshed for (min)")
if reading is not None:
    verdict = zombie_verdict(reading, stale_min * 60.0)
    if verdict.suspect:
        st.warning("Zombie suspect:\n" + "\n".join(f"- {md_text(r)}" for r in verdict.reasons),
                   icon=":material/skull:")
    else:
        st.caption(f"No zombie: {observed_caption(reading)}" if reading.exists else "No zombie: no clock.")
if st.button("Force-clear the clock…", key="drills_clear_open_button", disabled=locked or reading is None
             or not reading.exists):
    st.session_state[CLEAR_OPEN] = True


@st.dialog("Force-clear the panic clock")
def clear_dialog() -> None:
    st.session_state.pop(CLEAR_KEEP, None)  # a rerun of the dialog alone consumes its widgets' marker here
    st.write("Workers still seeing panic will start a new clock at tier 1. "
             f"Say why (at least {MIN_CLEAR_REASON_CHARS} characters): it goes into the audit trail.")
    reason = st.text_input("Reason", key="drills_clear_reason", on_change=_keep_clear_dialog)
    confirm, cancel = st.columns(2)
    confirmed = confirm.button("Clear the clock", key="drills_clear_confirm", type="primary",
                               on_click=_keep_clear_dialog)
    if cancel.button("Cancel", key="drills_clear_cancel"):
        st.session_state[CLEAR_OPEN] = False
        st.rerun()
    if not confirmed:
        return
    if len(reason.strip()) < MIN_CLEAR_REASON_CHARS:
        st.error(f"The reason needs at least {MIN_CLEAR_REASON_CHARS} characters.")
        return
    cleared = guarded("clearing the clock", lambda: force_clear(
        target.panic_clock(), audit_trail(), current_access(), now=server_now(), why=reason,
        stale_after_s=stale_min * 60.0))
    if cleared is not None:
        st.session_state[CLEAR_OPEN] = False
        what = "Zombie clock" if cleared.verdict.suspect else "Panic clock"
        st.session_state[FLASH] = f"{what} cleared." if cleared.existed else "The clock was already gone."
        st.rerun()


if st.session_state.get(CLEAR_OPEN):
    clear_dialog()

st.header("Fail-safe drill")
st.caption("A breaker pointed at a loopback port where nothing listens must answer (0, PANIC_FULL), fast. "
           "It touches no key.")
calls = st.number_input("Panic calls", min_value=1, max_value=100, value=5, key="drills_failsafe_calls")
if st.button("Run fail-safe drill", key="drills_failsafe"):
    failsafe = guarded("running the fail-safe drill",
                       lambda: run_failsafe_drill(audit_trail(), current_access(), calls=int(calls)))
    if failsafe is not None:
        st.session_state["drills_failsafe_result"] = failsafe.result
        show_audit_error(failsafe)
drill = st.session_state.get("drills_failsafe_result")
if drill is not None:
    if drill.all_fail_safe:
        st.success(f"All {len(drill.calls)} answers were (0, PANIC_FULL) from {drill.target}; "
                   f"worst latency {format_latency_ms(drill.worst_latency_ms)}.")
    else:
        st.error("The breaker did not fail safe on every call: see the table.")
    st.dataframe([{"call": c.call, "ttl": c.ttl, "mode": c.mode, "latency (ms)": latency_ms(c.latency_ms)}
                  for c in drill.calls], hide_index=True)

st.header("Multi-worker drill")
st.caption("Threads and processes observe a panic at the same instant in a scratch namespace "
           "(deleted afterwards): one of them must write the start, all must read the same one.")
m1, m2 = st.columns(2)
threads = m1.number_input("Threads", min_value=0, max_value=16, value=8, key="drills_threads")
processes = m2.number_input("Processes", min_value=0, max_value=16, value=4, key="drills_processes")
if st.button("Run multi-worker drill", key="drills_multi", disabled=locked):
    multi_run = guarded("running the multi-worker drill", lambda: run_multi_worker_drill(
        audit_trail(), current_access(), url=target.url, client=drill_client(),
        key_prefix=target.settings.key_prefix, threads=int(threads), processes=int(processes)))
    if multi_run is not None:
        st.session_state["drills_multi_result"] = multi_run.result
        show_audit_error(multi_run)
multi = st.session_state.get("drills_multi_result")
if multi is not None:
    writers = sum(w.initialized for w in multi.workers)
    if multi.agreed:
        st.success(f"All {len(multi.workers)} workers agree on one start ({fmt_ts(next(iter(multi.distinct_starts)))}),"
                   f" written by exactly one of them.")
    else:
        st.error(f"Workers disagree: {len(multi.distinct_starts)} distinct starts, {writers} writers.")
    st.dataframe([{"worker": w.worker, "kind": w.kind, "start": fmt_ts(w.start), "wrote it": w.initialized,
                   "error": w.error or ""} for w in multi.workers], hide_index=True)
finish_page(sidebar)
