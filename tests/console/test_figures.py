"""Plotly figure builders are pure: data in, figure out, no browser."""

from breaker.ops.audit import AuditEntry
from breaker.ops.drills import Replay, ReplayPoint
from console.figures import figure_replay, figure_tier_timeline


def test_replay_figure_has_ttl_tier_and_clock_per_mode():
    """Each replay contributes a TTL, a tier and a clock-duration trace, named after its mode."""
    points = (ReplayPoint(0, "panic", 0, "PANIC_FULL", 1, 0.0), ReplayPoint(1, "normal", 60, "NORMAL", 0, None))
    figure = figure_replay([Replay("flickering", False, points), Replay("flickering", True, points)])
    assert len(figure.data) == 6
    assert {t.name for t in figure.data} == {"default (calm period)", "seed mode (end_on_normal)"}
    assert list(figure.data[1].y) == [1, 0]
    assert figure.layout.title.text == "Scenario replay: flickering"


def test_tier_timeline_steps_and_actions():
    """The timeline draws the fleet tier as steps up to now and marks operator actions."""
    entries = [
        AuditEntry("1-0", 100.0, "operator", "alice", "panic_start", "drill", 3, {"hold_until": 1000.0}),
        AuditEntry("2-0", 200.0, "operator", "alice", "panic_end", "done"),
    ]
    figure = figure_tier_timeline(entries, now=300.0)
    steps, actions = figure.data
    assert list(steps.y) == [3, 0, 0]
    assert list(actions.text) == ["alice: panic_start (drill)", "alice: panic_end (done)"]


def test_empty_timeline_is_an_empty_figure_on_a_time_axis():
    """No history draws an empty chart, not an error: the last hour up to now on a time axis with a note, not
    Plotly's -1..6 number axis (issue 20)."""
    from datetime import UTC, datetime

    figure = figure_tier_timeline([], now=1_800_000_000.0)
    assert figure.data == ()
    assert figure.layout.xaxis.type == "date"
    assert figure.layout.xaxis.range[1] == datetime.fromtimestamp(1_800_000_000.0, UTC)
    assert [a.text for a in figure.layout.annotations] == ["No tier change or operator action yet"]


def test_history_hover_shows_names_as_text():
    """Issue 14 finding 5: a login name with Plotly markup (<a href>, <b>) is escaped in History's hover text."""
    from breaker.ops import AuditEntry
    from console.figures import figure_tier_timeline

    entry = AuditEntry("1-0", 1_800_000_000.0, "login", '<a href="http://127.0.0.1:9/x">x</a>', "login_failed",
                       "<b>why</b>")
    trace = figure_tier_timeline([entry], 1_800_000_100.0).data[-1]
    assert all("<" not in text and ">" not in text for text in trace.text)
    assert "&lt;a href" in trace.text[0]


def _point(minute, run="r2", tiers=None):
    from breaker.ops.demo import LoadPoint

    return LoadPoint(at=minute, run=run, minute=minute, phase="p", ours={"high_stakes": 5.0},
                     seed={"high_stakes": 9.0}, tiers=tiers or {})


def test_demo_tier_labels_do_not_overlap():
    """Three classes changing tier in the same minute get one label, not three drawn on top of each other."""
    from console.demo_figures import figure_backend_load

    points = [_point(m, tiers={"high_stakes": 1, "medium_stakes": 1, "low_stakes": 1}) for m in range(10)]
    points += [_point(m, tiers={"high_stakes": 2, "medium_stakes": 2, "low_stakes": 2}) for m in range(10, 60)]
    [label] = [a.text for a in figure_backend_load(points).layout.annotations]
    assert label == "high → 2, medium → 2, low → 2"


def test_demo_chart_keeps_the_previous_loop_when_the_scenario_loops():
    """A new run (the scenario looped) starts with no points of its own: the previous loop stays on the chart."""
    from console.demo_figures import figure_backend_load, split_runs

    stored = [_point(m, run="r1") for m in range(30)] + [_point(0, run="r2")]
    current, previous = split_runs(stored, "r2")
    assert [p.run for p in current] == ["r2"] and len(previous) == 30
    figure = figure_backend_load(current, previous)
    assert "ours, previous loop" in [trace.name for trace in figure.data]
