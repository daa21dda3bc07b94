"""The two-person rule in the console: a pending force_calm shows on every page to other operators; approval."""

import pytest

from breaker import PanicClock
from breaker.ops import AuditTrail, Principal
from breaker.ops.approvals import pending_request, request_force_calm
from breaker.ops.credentials import hash_password
from breaker.ops.overrides import read_override
from tests.console.conftest import login, open_console

BOB_PASSWORD = "bob's own passphrase"
ALICE = Principal.of("alice", "operator")


@pytest.fixture(autouse=True)
def _patient_redis(monkeypatch):
    """A loaded test machine can exceed a worker's 50 ms timeout; these tests are about the rule, not latency."""
    monkeypatch.setenv("BREAKER_REDIS_TIMEOUT_MS", "1000")


def _as_bob(page):
    at = open_console(page)
    at.secrets["operators"] = {"bob": {"hash": hash_password(BOB_PASSWORD), "role": "approver"},
                               "alice": hash_password("alice-pw")}
    at.run()
    return login(at, "bob", BOB_PASSWORD)


def test_pending_request_shows_on_every_page_and_a_second_operator_approves(console_env):
    """alice's request shows to bob on each page; his approval sets force_calm naming both of them."""
    clock = PanicClock(console_env)
    request_force_calm(clock, AuditTrail(console_env), ALICE, minutes=15, why="signal stuck in panic")
    at = _as_bob(None)
    for page in ("pages/drills.py", "pages/tiers.py", "pages/history.py", "pages/live.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert any("asks to force calm" in w.value and "alice" in w.value for w in at.warning), page
    [button] = [b for b in at.button if b.key and b.key.startswith("approve_force_calm_")]
    button.click().run()
    assert not at.exception
    assert read_override(clock).override.who == "alice, approved by bob"
    assert pending_request(clock) is None
    assert any("force_calm is on" in s.value for s in at.success)


def test_requester_and_anonymous_viewers_get_no_approve_button(console_env):
    """The requester sees their request wait; a read-only visitor sees nothing of it."""
    clock = PanicClock(console_env)
    request_force_calm(clock, AuditTrail(console_env), ALICE, minutes=15, why="signal stuck in panic")
    anonymous = open_console("pages/drills.py")
    assert not any("force calm" in w.value for w in anonymous.warning)
    at = open_console("pages/drills.py")
    at.secrets["operators"] = {"alice": hash_password("alice-pw")}
    at.run()
    login(at, "alice", "alice-pw")
    assert any("waits for a second operator" in i.value for i in at.info)
    assert not [b for b in at.button if b.key and b.key.startswith("approve_force_calm_")]


def test_self_declared_operator_cannot_approve(console_env):
    """Logged in with the shared password, an operator sees the request but no Approve button."""
    request_force_calm(PanicClock(console_env), AuditTrail(console_env), ALICE, minutes=15, why="stuck")
    at = login(open_console("pages/drills.py"), "carol")
    assert any("asks to force calm" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key and b.key.startswith("approve_force_calm_")]
    assert any("Approving needs a verified identity" in c.value and "self-declared" in c.value for c in at.caption)


def test_a_verified_operator_without_the_approver_role_gets_no_approve_button(console_env):
    """Roles: a verified operator (the default role of a plain [operators] entry) sees the request, cannot
    approve it, and is told why."""
    request_force_calm(PanicClock(console_env), AuditTrail(console_env), ALICE, minutes=15, why="stuck")
    at = open_console("pages/drills.py")
    at.secrets["operators"] = {"dave": hash_password("dave-pw")}
    at.run()
    login(at, "dave", "dave-pw")
    assert not [b for b in at.button if b.key and b.key.startswith("approve_force_calm_")]
    assert any("approver" in c.value for c in at.caption)




def _button(at):
    return [b for b in at.button if b.key and b.key.startswith("approve_force_calm_")]


@pytest.mark.parametrize(("lapsed", "said"), [(True, "lapsed: nobody approved it"),
                                              (False, "another operator approved it or it was withdrawn")])
def test_an_approve_button_that_goes_away_says_why(console_env, lapsed, said):
    """bob saw alice's Approve button; the request is gone on his next run: the page says why (issue 20)."""
    from breaker.ops.approvals import pending_key
    from console.approvals import SHOWN

    clock = PanicClock(console_env)
    request_force_calm(clock, AuditTrail(console_env), ALICE, minutes=15, why="signal stuck in panic")
    at = _as_bob("pages/drills.py")
    assert _button(at)
    console_env.delete(pending_key(clock))
    if lapsed:  # its time ran out (the key expired): the session's note of when it lapses is in the past
        request_id, requester, minutes, _ = at.session_state[SHOWN]
        at.session_state[SHOWN] = (request_id, requester, minutes, 0.0)
    at.run()
    assert not _button(at)
    assert any(said in i.value and "alice" in i.value for i in at.info), [i.value for i in at.info]


def test_a_refusal_has_one_period():
    from breaker.ops import WriteRefused
    from console.shared import refusal_text

    text = refusal_text(WriteRefused("approving force_calm refused: it needs a verified operator."))
    assert text.endswith("verified operator`. Nothing was written.") and ".`." not in text, text
