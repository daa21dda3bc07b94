"""Scheduled overrides in the console (AppTest, real server): the form on Fleet, the Plotly timeline, cancel, the
second operator's approval of a scheduled force_calm, and each window's life on History; plus the pure figure."""

from __future__ import annotations

import json

import pytest

from breaker import PanicClock
from breaker.ops import AuditTrail, Principal
from breaker.ops.schedule import read_schedule, schedule_override
from breaker.override import Override, OverrideMode
from breaker.schedule import Window, run_step
from console.schedule_figures import OVERRIDE_ROW, SCHEDULE_ROW, WAITING_COLOUR, figure_schedule_timeline
from tests.console.conftest import login, login_verified, open_console

ALICE = Principal.of("alice", "operator")


def fleet():
    return open_console("pages/fleet.py")


def timeline(at) -> dict:
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    [chart] = [c for c in charts if "Planned override windows" in json.dumps(c["layout"].get("title", ""))]
    return chart


def plan(client, mode="force_full", **kwargs):
    kwargs.setdefault("after_s", 600)
    return schedule_override(PanicClock(client), AuditTrail(client), ALICE, mode=mode,
                             minutes=kwargs.pop("minutes", 15), why=kwargs.pop("why", "cup final"), **kwargs)


def test_the_form_schedules_a_window_and_the_timeline_shows_it(console_env):
    """Logged in: mode, start (+30m), length and why make one window (audited); the timeline draws it and now."""
    at = login(fleet())
    at.radio(key="schedule_mode").set_value("force_full").run()
    at.text_input(key="schedule_start").input("+30m")
    at.number_input(key="schedule_minutes").set_value(20.0)
    at.text_input(key="schedule_why").input("cup final kick-off")
    at.button(key="schedule_submit").click().run()
    assert not at.exception
    assert any(s.value.startswith("force_full scheduled from") for s in at.success)
    [window] = read_schedule(PanicClock(console_env)).windows
    assert (window.mode.value, window.why, window.until - window.since) == ("force_full", "cup final kick-off", 1200)
    assert window.who == "alice (self-declared)"
    assert AuditTrail(console_env).entries()[-1].action == "override_schedule"
    chart = timeline(at)
    [trace] = [t for t in chart["data"] if window.id in t["name"]]
    assert trace["y"] == [SCHEDULE_ROW, SCHEDULE_ROW]
    assert any(shape.get("name") == "now" for shape in chart["layout"]["shapes"])
    [table] = [d.value for d in at.dataframe if "approval" in d.value.columns]
    assert table.iloc[0]["id"] == window.id and table.iloc[0]["state"] == "planned"


@pytest.mark.parametrize("start, why, message", [
    ("soon", "x", "neither ISO 8601"), ("+30m", "", "Say why"), ("2020-01-01T00:00:00Z", "x", "past"),
])
def test_form_refusals_write_nothing(console_env, start, why, message):
    at = login(fleet())
    at.text_input(key="schedule_start").input(start)
    if why:
        at.text_input(key="schedule_why").input(why)
    at.button(key="schedule_submit").click().run()
    assert not at.exception
    assert any(message in e.value for e in at.error)
    assert read_schedule(PanicClock(console_env)).windows == ()


def test_an_overlapping_window_is_refused_on_the_page(console_env):
    first = plan(console_env, after_s=1800)
    at = login(fleet())
    at.text_input(key="schedule_start").input("+35m")
    at.text_input(key="schedule_why").input("again")
    at.button(key="schedule_submit").click().run()
    assert any("Refused" in e.value and "overlap" in e.value for e in at.error)
    assert [w.id for w in read_schedule(PanicClock(console_env)).windows] == [first.id]


def test_cancel_from_the_page(console_env):
    window = plan(console_env)
    at = login(fleet())
    at.selectbox(key="schedule_cancel_id").set_value(window.id)
    at.text_input(key="schedule_cancel_why").input("match postponed")
    at.button(key="schedule_cancel").click().run()
    assert not at.exception
    assert read_schedule(PanicClock(console_env)).windows == ()
    assert AuditTrail(console_env).entries()[-1].action == "override_schedule_cancel"


def test_no_timeline_when_nothing_is_planned_or_on(console_env):
    at = fleet()
    assert not at.exception and not at.get("plotly_chart")
    assert any(c.value == "No windows planned." for c in at.caption)


def test_read_only_visitors_see_the_timeline_and_disabled_forms(console_env):
    plan(console_env)
    at = fleet()
    assert not at.exception
    assert timeline(at)["data"]
    assert at.button(key="schedule_submit").disabled and at.button(key="schedule_cancel").disabled
    shown = " ".join(c.value for c in at.caption)
    assert "You cannot schedule force_full:" in shown and "You cannot remove a window:" in shown
    assert "read-only: log in" in shown


@pytest.mark.parametrize("column, full, calm, cancel, approve", [
    ("viewer", False, False, False, False),
    ("self-declared", True, False, True, False),
    ("operator", True, True, True, False),
    ("approver", True, True, True, True),
    ("admin", True, True, True, True),
])
def test_the_schedule_controls_follow_the_role(console_env, column, full, calm, cancel, approve):
    """Schedule (per mode), Remove and Approve are enabled exactly where the role matrix says (docs/access.md:
    override schedule force_full / force_calm, override cancel, override approve-window); otherwise disabled with
    the reason shown, and a click sent for a refused principal writes nothing (breaker.ops' own check of each
    cell is tests/ops/test_role_matrix.py)."""
    window = schedule_override(PanicClock(console_env), AuditTrail(console_env), Principal.of("rita"),
                               mode="force_calm", minutes=15, why="feed", after_s=600, two_person_rule=True)
    at = login(fleet(), "sam") if column == "self-declared" else login_verified(fleet(), f"{column}-user", column)
    assert not at.exception
    assert at.button(key="schedule_submit").disabled is (not full)
    if full:
        at.radio(key="schedule_mode").set_value("force_calm").run()
        assert at.button(key="schedule_submit").disabled is (not calm)
        if not calm:
            assert any("You cannot schedule force_calm" in c.value and "self-declared" in c.value
                       for c in at.caption)
    assert at.button(key="schedule_cancel").disabled is (not cancel)
    button = at.button(key=f"schedule_approve_{window.id}_{window.digest()}")
    assert button.disabled is (not approve)
    if not approve:
        assert any(c.value.startswith("Approving needs a verified identity with the approver role")
                   for c in at.caption)
    if not approve:  # a button drawn enabled for an approver, clicked once the session is the column's (a lapsed
        # login, a role taken away): the rerun draws it disabled for that principal, and the click writes nothing
        at = login_verified(fleet(), "april", "approver")
        at.session_state["operator"] = {"viewer": Principal.of("vera", "viewer"), "operator": Principal.of("olga"),
                                        "self-declared": Principal.of("sam", "operator", "shared")}[column]
        button = at.button(key=f"schedule_approve_{window.id}_{window.digest()}")
    before = AuditTrail(console_env).entries()
    button.click().run()
    assert not at.exception
    [stored] = read_schedule(PanicClock(console_env)).windows
    assert stored.approved is approve
    if not approve:
        assert [e.action for e in AuditTrail(console_env).entries()] == [e.action for e in before]
        assert any(c.value.startswith("Approving needs a verified identity") for c in at.caption)
    else:
        entry = AuditTrail(console_env).entries()[-1]
        assert (entry.action, entry.role, entry.auth) == ("force_calm_approved", column, "password")


def test_a_second_verified_operator_approves_a_scheduled_force_calm(console_env):
    window = plan(console_env, "force_calm", two_person_rule=True)
    at = login_verified(fleet(), "bob", "approver")
    assert any("plans force_calm" in w.value for w in at.warning)
    assert timeline(at)["data"][0]["line"]["color"] == WAITING_COLOUR
    at.button(key=f"schedule_approve_{window.id}_{window.digest()}").click().run()
    assert not at.exception
    [stored] = read_schedule(PanicClock(console_env)).windows
    assert stored.approved_by == "bob"
    assert AuditTrail(console_env).entries()[-1].action == "force_calm_approved"


def test_the_requester_cannot_approve(console_env):
    """Alice, now an approver, sees her own window's Approve disabled, the reason shown (canonical names)."""
    window = plan(console_env, "force_calm", two_person_rule=True)  # alice's; she logs in below
    at = login_verified(fleet(), "Alice", "approver")
    assert any("it is your request" in c.value for c in at.caption)
    assert at.button(key=f"schedule_approve_{window.id}_{window.digest()}").disabled


def test_history_shows_each_windows_life(console_env):
    """Scheduled, started and ended (by the worker fragment), and another cancelled: one row per window."""
    clock = PanicClock(console_env)
    ran = plan(console_env, after_s=0, minutes=1)
    run_step(console_env, key_prefix="brain:", max_s=3600, now=ran.since)
    run_step(console_env, key_prefix="brain:", max_s=3600, now=ran.until + 1)
    dropped = plan(console_env, after_s=600)
    from breaker.ops.schedule import cancel_window

    cancel_window(clock, AuditTrail(console_env), ALICE, window_id=dropped.id, why="postponed")
    at = open_console("pages/history.py")
    assert not at.exception
    [table] = [d.value for d in at.dataframe if "outcome" in d.value.columns]
    rows = {row["window"]: row for _, row in table.iterrows()}
    assert rows[ran.id]["outcome"] == "ended" and "started" in rows[ran.id]["events"]
    assert rows[dropped.id]["outcome"] == "cancelled" and "scheduled" in rows[dropped.id]["events"]


def test_history_shows_a_force_calm_skipped_for_want_of_approval(console_env):
    """Issue 23: a scheduled force_calm nobody approved before its start is not applied; the worker fragment's
    round trip audits it as skipped, and History shows that entry and the window's row with outcome skipped."""
    window = plan(console_env, "force_calm", two_person_rule=True, after_s=0, minutes=5, why="quiet migration")
    status, current, _ = run_step(console_env, key_prefix="brain:", max_s=3600, now=window.since + 1)
    assert (status, current) == ("skipped", window.id)
    assert console_env.get("brain:panic_override") is None  # not applied
    [skip] = [e for e in AuditTrail(console_env).entries() if e.action == "override_window_skipped"]
    assert skip.detail["window"] == window.id and "not approved" in skip.detail["reason"]
    at = open_console("pages/history.py")
    assert not at.exception
    [entries] = [d.value for d in at.dataframe if "what" in d.value.columns and "kind" in d.value.columns]
    [row] = [row for _, row in entries.iterrows() if row["what"] == "override_window_skipped"]
    assert (row["who"], row["why"], row["auth"]) == ("alice", "quiet migration", "worker")
    [table] = [d.value for d in at.dataframe if "outcome" in d.value.columns]
    [story] = [row for _, row in table.iterrows() if row["window"] == window.id]
    assert (story["mode"], story["outcome"]) == ("force_calm", "skipped")
    assert "scheduled" in story["events"] and "skipped" in story["events"] and "started" not in story["events"]


def test_figure_schedule_timeline_is_a_pure_function():
    """Bars per window on their row, the override in force on its own, now marked, hover text escaped."""
    now = 1_800_000_000.0
    windows = [
        Window("a1", OverrideMode.FORCE_FULL, "alice", "<b>cup</b>", now + 600, now + 1500),
        Window("b2", OverrideMode.FORCE_CALM, "carol", "migration", now + 3600, now + 4500, approved=False,
               requested_by="carol"),
        Window("c3", OverrideMode.FORCE_FULL, "alice", "old", now - 900, now - 600, state="ended"),
    ]
    override = Override(OverrideMode.FORCE_FULL, "dave", "incident", now - 60, now + 240)
    figure = figure_schedule_timeline(windows, now, override)
    traces = {t.name: t for t in figure.data}
    assert set(traces) == {"force_full a1 [planned]", "force_calm b2 [planned] (waiting for approval)",
                           "force_full c3 [ended]", "force_full (in force)"}
    assert traces["force_calm b2 [planned] (waiting for approval)"].line.color == WAITING_COLOUR
    assert traces["force_full (in force)"].y == (OVERRIDE_ROW, OVERRIDE_ROW)
    assert "<b>" not in traces["force_full a1 [planned]"].text[0]
    [now_line] = [s for s in figure.layout.shapes if s.name == "now"]
    assert now_line.x0 == now_line.x1
    left, right = figure.layout.xaxis.range
    assert left.timestamp() < now - 900 and right.timestamp() > now + 4500
    empty = figure_schedule_timeline([], now)
    assert len(empty.data) == 0 and len(empty.layout.shapes) == 1


def test_an_approval_click_is_bound_to_the_window_content_shown(console_env):
    """Review (identity): the console's Approve button was keyed by the window's id alone and approved the digest of
    whatever the click's rerun read, so a window rewritten under the same id between showing and clicking (a
    longer calm, another reason) was approved unseen. The button now carries the digest shown, as the
    force_calm request's does: a changed window is a new button, and the old click approves nothing."""
    plan(console_env, "force_calm", two_person_rule=True)
    at = login_verified(fleet(), "bob", "approver")
    [shown] = [b for b in at.button if b.label == "Approve scheduled force_calm"]
    [raw] = console_env.zrange("brain:override_schedule", 0, -1)
    changed = {**json.loads(raw), "why": "something else entirely"}
    console_env.zrem("brain:override_schedule", raw)
    console_env.zadd("brain:override_schedule", {json.dumps(changed): changed["since"]})
    shown.click().run()
    assert not at.exception
    [stored] = read_schedule(PanicClock(console_env)).windows
    assert not stored.approved
    assert "force_calm_approved" not in [e.action for e in AuditTrail(console_env).entries()]
