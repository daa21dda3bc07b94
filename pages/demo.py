"""Demo: a simulated fleet plays a scenario; the backend load it sends, beside the seed's protocol."""

import streamlit as st

from breaker.ops.demo import control_demo, load_scenario, read_marker, read_points, scenario_names
from console.access import current_access
from console.demo_figures import figure_backend_load, split_runs
from console.demo_fleet import fleet_running, start_fleet
from console.page import finish_page, start_page
from console.shared import audit_trail, get_target, guarded
from console.text import md_text

REFRESH_S = 2

sidebar = start_page()
st.title("Demo")
st.caption("Simulated backend workers (several worker identities per process) read odds for markets of every "
           "stakes class through in-process caches and call `get_ttl` on each cache write, with heartbeats. A "
           "scenario plays the signal; the panic clock is accelerated by moving its start back, so Live, Fleet "
           "and the workers all see the same accelerated duration. Cache TTLs run in real seconds.")
target = get_target()
prefix = target.settings.key_prefix
marker = guarded("reading the demo marker", lambda: read_marker(target.client, prefix))


def _control(action: str, **options) -> None:
    if action == "play" and target.embedded and not fleet_running():
        start_fleet(target)  # idle; it plays the queued command on its first tick
    sent = guarded(f"demo {action}", lambda: control_demo(
        target.client, audit_trail(), current_access(), embedded=target.embedded, prefix=prefix, action=action,
        **options) or True)
    if sent:
        st.session_state["demo_flash"] = f"Sent: {action}."


if target.embedded:
    names = scenario_names()
    current = marker.scenario if marker is not None and marker.scenario in names else "tour"
    c1, c2 = st.columns([2, 1])
    scenario = c1.selectbox("Scenario", names, index=names.index(current), key="demo_scenario",
                            format_func=lambda name: f"{name}: {load_scenario(name).title}")
    chosen = load_scenario(scenario)
    speed = c2.number_input("Speed (scenario seconds per second)", min_value=1.0, max_value=3600.0,
                            value=float(chosen.speed), step=10.0, key=f"demo_speed_{scenario}")
    st.caption(f"{chosen.description} {chosen.minutes:g} scenario minutes: about "
               f"{chosen.minutes * 60 / speed / 60:.1f} real minutes at this speed.")
    b1, b2, b3, _ = st.columns([1, 1, 1, 3])
    if b1.button("Start", key="demo_start", type="primary"):
        _control("play", scenario=scenario, speed=float(speed))
    playing = marker is not None and marker.state == "playing"
    paused = marker is not None and marker.state == "paused"
    if b2.button("Resume" if paused else "Pause", key="demo_pause", disabled=not (playing or paused)):
        _control("resume" if paused else "pause")
    if b3.button("Stop", key="demo_stop", disabled=marker is None or marker.state == "stopped"):
        _control("stop")
    if flash := st.session_state.pop("demo_flash", None):
        st.caption(flash + " The fleet picks it up within a second.")
else:
    st.info("The demo control works on the console's embedded server only (`make demo`): a real Redis has real "
            "workers. To watch a simulated fleet on a real server, run `python -m breaker.ops.demo` with a key "
            "prefix of its own and point a console at the same prefix.", icon=":material/lock:")


@st.fragment(run_every=REFRESH_S)
def load_panel() -> None:
    try:
        now_marker = read_marker(target.client, prefix)
        points, previous = split_runs(read_points(target.client, prefix), now_marker.run if now_marker else None)
    except Exception as exc:
        st.error(f"Redis error while reading the backend load: {type(exc).__name__}: {md_text(exc)}")
        return
    if now_marker is None:
        st.info("No demo fleet is running." + (" Pick a scenario and press Start." if target.embedded else ""),
                icon=":material/theaters:")
    else:
        st.caption(f"{md_text(now_marker.state)}: {md_text(now_marker.title or now_marker.scenario)} · scenario minute "
                   f"{now_marker.minute:.0f} of {now_marker.total_minutes:.0f} · phase {md_text(now_marker.phase)} · "
                   f"{now_marker.workers} workers · {now_marker.speed:g}×")
    if not points and not previous:
        return
    recent = (points or previous)[-5:]
    ours = sum(p.ours_total for p in recent) / len(recent)
    seed = sum(p.seed_total for p in recent) / len(recent)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Backend requests/s (ours)", f"{ours:,.1f}")
    m2.metric("Seed's protocol", f"{seed:,.1f}")
    m3.metric("Saved", f"{100 * (1 - ours / seed):.0f} %" if seed > 0 else "—")
    m4.metric("get_ttl answers/s", f"{sum(p.answers for p in recent) / len(recent):,.1f}")
    st.plotly_chart(figure_backend_load(points, previous), key="demo_load_chart")
    st.caption(f"{len(points)} points, one per second. The seed's line is the same reads answered as the seed "
               "did (its clock deleted by every calm answer), so its tiers never advance.")


load_panel()
finish_page(sidebar)
