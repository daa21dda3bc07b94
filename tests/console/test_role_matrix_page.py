"""The role matrix of docs/access.md through the console's door (AppTest against a real server): per column one
session; each write's control is enabled exactly where the table says yes, otherwise disabled or absent with the
reason shown, and a click on a refused control writes and audits nothing. Tokens have no console door (CLI only)."""

from __future__ import annotations

from dataclasses import dataclass, field

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


def _world(client, request: bool = True):
    """A panic, a force_full override and (unless ``request`` is False) rita's force_calm request."""
    clock, trail, setup = PanicClock(client), AuditTrail(client), Principal.of("setup", "admin")
    start_panic(clock, trail, setup, now=clock.server_now(), why="matrix")
    set_override(clock, trail, setup, mode="force_full", minutes=10, why="matrix")
    if not request:
        return None
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
APPROVE = "approve_force_calm_"  # the Approve button's key begins so (then the request's id and digest)
SAYS_WHY = ("Read-only:", "You cannot set or request force_calm:", "Approving needs a verified identity")


@dataclass(frozen=True)
class Click:
    """How a console write is made: on ``page``, logged in as a verified ``role``, first click ``open`` (a
    dialog), pick ``mode`` in the override radio, tick ``tick``, type ``inputs``; then click ``key``. That it
    happened: the audit trail gains an ``action`` entry by the clicking principal."""

    page: str
    key: str
    action: str
    role: str = "operator"
    open: str | None = None
    mode: str | None = None
    tick: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)


CLICKS = {
    "panic start": Click("pages/drills.py", "drills_start", "panic_start", tick="drills_overwrite"),
    "panic end": Click("pages/drills.py", "drills_end", "panic_end"),
    "clear": Click("pages/drills.py", "drills_clear_confirm", "zombie_clear", open="drills_clear_open_button",
                   inputs={"drills_clear_reason": "a zombie left by the matrix"}),
    "override set force_full": Click("pages/fleet.py", "overrides_set", "override_set", mode="force_full",
                                     inputs={"overrides_why": "matrix"}),
    "override extend": Click("pages/fleet.py", "overrides_extend", "override_extend",
                             inputs={"overrides_change_why": "matrix"}),
    "override clear": Click("pages/fleet.py", "overrides_clear", "override_clear",
                            inputs={"overrides_change_why": "matrix"}),
    "request force_calm": Click("pages/fleet.py", "overrides_set", "force_calm_requested", mode="force_calm",
                                inputs={"overrides_why": "matrix"}),
    "approve force_calm": Click("pages/drills.py", APPROVE, "force_calm_approved", role="approver"),
}


def _button(at, key: str):
    """The button ``key``, or the one whose key begins with APPROVE; None when the page did not draw it."""
    found = [b for b in at.button if b.key == key or (key == APPROVE and b.key and b.key.startswith(APPROVE))]
    return found[0] if found else None


def _snapshot(client) -> dict[bytes, bytes]:
    """Every key's value (the clock, the override, a pending request, the audit stream...), but the login
    limiter's counters."""
    return {key: client.dump(key) for key in sorted(client.keys("*")) if b"login_failures:" not in key}


def _prepare(at, click: Click):
    """A verified ``click.role`` on ``click.page`` with the write's inputs in place and its control drawn."""
    if click.open is not None:
        at.button(key=click.open).click().run()
    if click.mode is not None:
        at.radio(key="overrides_mode").set_value(click.mode)
    if click.tick is not None:
        at.checkbox(key=click.tick).check()
    for key, text in click.inputs.items():
        at.text_input(key=key).input(text)
    return at.run()


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("write", list(CLICKS))
def test_a_click_the_role_does_not_allow_writes_and_audits_nothing(console_env, write, column):
    """Every console write: its control drawn enabled (for an operator; the Approve button for an approver) and
    clicked by a session whose principal is now the column's (a lapsed login, a role taken away). Allowed: the
    write is audited under the column's name. Refused: no key changed (clock, override, pending request, audit
    trail), and the page says why: the rerun draws the control disabled or not at all, and Streamlit discards a
    disabled widget's click; a control still drawn (the force-clear dialog's confirm) is refused by
    breaker.ops."""
    click = CLICKS[write]
    _world(console_env, request=write == "approve force_calm")
    at = _prepare(login_verified(open_console(click.page), f"{click.role}-clicker", click.role), click)
    assert not at.exception
    assert not _button(at, click.key).disabled, write
    principal = PRINCIPAL_OF[column]
    at.session_state["operator"] = principal
    del at.session_state[STAMP_KEY]  # the column's principal as is, not re-read from the clicker's secrets entry
    before, entries = _snapshot(console_env), len(AuditTrail(console_env).entries())
    _button(at, click.key).click().run()
    assert not at.exception, (write, column, at.exception)
    if MATRIX[write, column]:
        added = AuditTrail(console_env).entries()[entries:]
        assert (click.action, principal.who) in [(e.action, e.who) for e in added], (write, column, added)
        return
    assert _snapshot(console_env) == before, (write, column)
    control = _button(at, click.key)
    if control is None or control.disabled:  # the page drew it refused (Streamlit drops a disabled widget's click)
        shown = [e.value for e in (*at.warning, *at.caption)]
        assert any(v.startswith(SAYS_WHY) for v in shown), (write, column, shown)
    else:  # still drawn enabled (the force-clear dialog's confirm): breaker.ops refused the write
        assert any(e.value.startswith("Refused:") for e in at.error), (write, column, at.error)


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
