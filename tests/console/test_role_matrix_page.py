"""The role matrix of docs/access.md through the console's door (AppTest against a real server): per column one
session; each write's control is enabled exactly where the table says yes, otherwise disabled or absent with the
reason shown, and a click on a refused control writes and audits nothing. Tokens have no console door (CLI only)."""

from __future__ import annotations

import pytest

from breaker import PanicClock
from breaker.ops import AuditTrail, Principal
from breaker.ops.actions import start_panic
from breaker.ops.approvals import pending_request, request_force_calm
from breaker.ops.overrides import read_override, set_override
from console.access import STAMP_KEY
from tests.console.conftest import login, login_verified, open_console
from tests.ops.test_role_matrix import COLUMNS, MATRIX

CONTROLS = {  # write -> (page, button key, mode to pick first)
    "panic start": ("pages/drills.py", "drills_start", None),
    "panic end": ("pages/drills.py", "drills_end", None),
    "clear": ("pages/drills.py", "drills_clear_open_button", None),
    "override set force_full": ("pages/fleet.py", "overrides_set", "force_full"),
    "override extend": ("pages/fleet.py", "overrides_extend", None),
    "override clear": ("pages/fleet.py", "overrides_clear", None),
    "request force_calm": ("pages/fleet.py", "overrides_set", "force_calm"),
}
ROLE_OF = {"viewer": "viewer", "operator": "operator", "approver": "approver", "admin": "admin"}


def _session(column: str, page: str):
    at = open_console(page)
    if column == "not logged in":
        return at
    if column == "self-declared":
        return login(at, "sam")
    return login_verified(at, f"{column}-user", ROLE_OF[column])


def _world(client):
    clock, trail, setup = PanicClock(client), AuditTrail(client), Principal.of("setup", "admin")
    start_panic(clock, trail, setup, now=clock.server_now(), why="matrix")
    set_override(clock, trail, setup, mode="force_full", minutes=10, why="matrix")
    return request_force_calm(clock, trail, Principal.of("rita", "operator"), minutes=5, why="matrix request")


def _writes(client):
    return [(e.action, e.who) for e in AuditTrail(client).entries() if e.kind != "login"]


@pytest.mark.parametrize("column", COLUMNS)
def test_console_controls_follow_the_matrix(console_env, column):
    """Drills and Fleet buttons, the force_calm request and the Approve button per the docs' table; a refused
    session is told why on the page."""
    request = _world(console_env)
    at = _session(column, "pages/drills.py")
    for write, (page, key, mode) in CONTROLS.items():
        at.switch_page(page).run()
        if mode is not None and not at.radio(key="overrides_mode").disabled:
            at.radio(key="overrides_mode").set_value(mode).run()
        assert not at.exception, (write, at.exception)
        assert at.button(key=key).disabled is (not MATRIX[write, column]), (write, column)
    approve = [b for b in at.button if b.key and b.key.startswith("approve_force_calm_")]
    assert bool(approve) is MATRIX["approve force_calm", column]
    shown = " ".join(e.value for e in (*at.warning, *at.caption))
    if not MATRIX["panic start", column]:
        assert "Read-only" in shown, shown
    elif not MATRIX["request force_calm", column]:
        assert "cannot set or request force_calm" in shown and "self-declared" in shown
    if not MATRIX["approve force_calm", column] and MATRIX["panic start", column]:
        assert "Approving needs a verified identity with the approver role" in shown
    if approve:
        approve[0].click().run()
        assert read_override(PanicClock(console_env)).override.mode.value == "force_calm"
        assert pending_request(PanicClock(console_env)) is None
    else:
        assert pending_request(PanicClock(console_env)).id == request.id


PRINCIPAL_OF = {"not logged in": None, "viewer": Principal.of("vera", "viewer"),
                "self-declared": Principal.of("sam", "operator", "shared"), "operator": Principal.of("olga"),
                "approver": Principal.of("april", "approver"), "admin": Principal.of("adam", "admin")}


@pytest.mark.parametrize("column", COLUMNS)
def test_a_click_the_role_does_not_allow_writes_and_audits_nothing(console_env, column):
    """A button drawn enabled (for an operator) and clicked by a session whose principal is now the column's (a
    lapsed login, a role taken away, a crafted message): the check in breaker.ops decides, the page shows the
    refusal, and the clock and the audit trail are as they were."""
    _world(console_env)
    at = login_verified(open_console("pages/drills.py"), "olga", "operator")
    assert not at.button(key="drills_end").disabled
    principal = PRINCIPAL_OF[column]
    if principal is None:
        at.session_state["operator"] = None
    else:
        at.session_state["operator"] = principal
    del at.session_state[STAMP_KEY]  # the column's principal as is, not re-read from olga's secrets entry
    before = _writes(console_env)
    at.button(key="drills_end").click().run()
    assert not at.exception
    ended = not PanicClock(console_env).read_now().exists
    assert ended is MATRIX["panic end", column]
    if not ended:
        assert _writes(console_env) == before
        shown = [e.value for e in (*at.error, *at.warning)]
        assert any(v.startswith(("Refused:", "Read-only:")) for v in shown), shown


@pytest.mark.parametrize("column", COLUMNS)
def test_break_glass_in_the_console_is_an_admins_alone(monkeypatch, console_env, column):
    """With BREAKER_TWO_PERSON_RULE=false on a real target, only a verified admin may set force_calm alone."""
    monkeypatch.setenv("BREAKER_TWO_PERSON_RULE", "false")
    at = _session(column, "pages/fleet.py")
    if not at.radio(key="overrides_mode").disabled:
        at.radio(key="overrides_mode").set_value("force_calm").run()
    allowed = MATRIX["force_calm alone (break-glass)", column]
    assert at.button(key="overrides_set").disabled is (not allowed)
    if allowed:
        at.text_input(key="overrides_why").input("nobody else is awake").run()
        at.button(key="overrides_set").click().run()
        assert [a for a, _ in _writes(console_env)][-2:] == ["override_set", "break_glass"]


@pytest.mark.parametrize("column", COLUMNS)
def test_the_schedule_controls_follow_the_matrix(console_env, column):
    """Fleet's scheduled overrides: Schedule (per mode), Remove window and Approve scheduled force_calm are enabled
    exactly where the docs' table says (override schedule force_full / force_calm, override cancel, override
    approve-window); otherwise disabled with the reason shown. Approving writes only where allowed."""
    from breaker.ops.schedule import read_schedule, schedule_override

    clock = PanicClock(console_env)
    window = schedule_override(clock, AuditTrail(console_env), Principal.of("rita", "operator"), mode="force_calm",
                               minutes=5, why="matrix window", after_s=3600, two_person_rule=True)
    at = _session(column, "pages/fleet.py")
    for write, mode in (("override schedule force_full", "force_full"), ("override schedule force_calm", "force_calm")):
        if not at.radio(key="schedule_mode").disabled:
            at.radio(key="schedule_mode").set_value(mode).run()
        assert not at.exception
        assert at.button(key="schedule_submit").disabled is (not MATRIX[write, column]), (write, column)
    assert at.button(key="schedule_cancel").disabled is (not MATRIX["override cancel", column])
    approve = at.button(key=f"schedule_approve_{window.id}_{window.digest()}")
    allowed = MATRIX["override approve-window", column]
    assert approve.disabled is (not allowed)
    shown = " ".join(c.value for c in at.caption)
    if not MATRIX["override schedule force_calm", column]:
        assert "You cannot schedule" in shown
    if not allowed:
        assert "Approving needs a verified identity with the approver role" in shown
    else:
        approve.click().run()
        assert not at.exception
    assert read_schedule(clock).windows[0].approved is allowed
