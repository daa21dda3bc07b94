"""Overrides in AppTest against a real server: the banner on every page, set / extend / clear of each mode with its
audit entry, refusals, a stored override that does not parse, and override episodes on History's timeline."""

import json

import pytest

from breaker import PanicClock
from breaker.ops import AuditTrail, Principal
from breaker.ops.approvals import pending_request
from breaker.ops.overrides import read_override, set_override
from tests.console.conftest import login, login_verified, open_console
from tests.console.test_fleet_page import server_now, write_beat

PAGES = ("pages/live.py", "pages/fleet.py", "pages/drills.py", "pages/tiers.py", "pages/history.py",
         "pages/demo.py")
WRITE_BUTTONS = ("overrides_set", "overrides_extend", "overrides_clear")


def put_override(client, mode="force_full", *, who="carol", why="feed incident 7", minutes=20.0):
    return set_override(PanicClock(client), AuditTrail(client), Principal.of(who), mode=mode, minutes=minutes,
                        why=why)


def banner(at) -> str:
    texts = [e.value for e in (*at.error, *at.warning, *at.info)
             if e.value.startswith(("Override **", "The stored override", "A stored override"))]
    assert len(texts) <= 1, texts
    return texts[0] if texts else ""


def fleet(**_):
    return open_console("pages/fleet.py")


@pytest.mark.parametrize("mode", ["force_full", "force_calm"])
def test_banner_on_every_page(console_env, mode):
    """While an override is on, every page shows its mode, time left and honour count, and who and why as text."""
    put_override(console_env, mode)
    now = server_now(console_env)
    write_beat(console_env, "w1:1:aaaa", now=now, override=mode)
    write_beat(console_env, "w2:2:bbbb", now=now, override=None)
    write_beat(console_env, "w3:3:cccc", now=now, override=mode, age_s=30)  # stale: not counted
    at = open_console()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        text = banner(at)
        assert f"Override **{mode}** is on" in text, page
        assert "1 of 2 reporting workers already honour it" in text
        assert any(t.value == "by: carol\nwhy: feed incident 7" for t in at.text), page
        assert "min" in text and "left" in text
    assert (mode == "force_full") == any("is on" in e.value for e in at.error)


def test_live_cards_show_the_override_answer_while_it_is_on(console_env):
    """Under force_full Live's cards show what workers answer (PANIC_FULL, 0 s), not what the clock implies
    (issue 20; more in test_live_truth.py)."""
    put_override(console_env, "force_full")
    at = open_console()
    assert [m.value for m in at.metric if m.label == "Mode"] == ["PANIC_FULL"] * 3
    assert sum(c.value.startswith("Without the override: tier 0") for c in at.caption) == 3


def test_no_banner_without_an_override(console_env):
    """No override stored: no banner on any page."""
    at = open_console()
    for page in PAGES:
        at.switch_page(page).run()
        assert banner(at) == "", page


@pytest.mark.parametrize("mode", ["force_full", "force_calm"])
def test_set_extend_clear_each_mode_is_audited(monkeypatch, console_env, mode):
    """Logged in on a real target: set, extend and clear write the key and one audit entry each, with who and why.
    Without the two-person rule force_calm is set directly by a verified admin alone (break-glass)."""
    monkeypatch.setenv("BREAKER_TWO_PERSON_RULE", "false")  # force_calm's direct path; the rule's own test is below
    at = login_verified(fleet(), "alice", "admin")
    at.radio(key="overrides_mode").set_value(mode).run()
    at.number_input(key="overrides_minutes").set_value(10.0)
    at.text_input(key="overrides_why").input("odds feed replaying stale prices")
    at.button(key="overrides_set").click().run()
    assert not at.exception
    assert any(s.value.startswith(f"Override {mode} set for 10 min") for s in at.success)
    reading = read_override(PanicClock(console_env))
    assert reading.override.mode.value == mode and 9.5 * 60 < reading.left_s <= 600
    assert f"Override **{mode}** is on" in banner(at)

    at.number_input(key="overrides_extend_minutes").set_value(5.0)
    at.text_input(key="overrides_change_why").input("still replaying")
    at.button(key="overrides_extend").click().run()
    assert any(s.value == f"Override {mode} extended by 5 min." for s in at.success)
    assert 14.5 * 60 < read_override(PanicClock(console_env)).left_s <= 900

    at.text_input(key="overrides_change_why").input("feed fixed")
    at.button(key="overrides_clear").click().run()
    assert any(s.value.startswith("Override cleared") for s in at.success)
    assert not console_env.exists("brain:panic_override")
    assert banner(at) == ""
    entries = [(e.who, e.action, e.why, e.detail.get("mode")) for e in AuditTrail(console_env).entries()
               if e.action != "break_glass"]
    assert entries[-3:] == [
        ("alice", "override_set", "odds feed replaying stale prices", mode),
        ("alice", "override_extend", "still replaying", mode),
        ("alice", "override_clear", "feed fixed", mode),
    ]
    assert ("break_glass" in [e.action for e in AuditTrail(console_env).entries()]) is (mode == "force_calm")


def test_force_calm_on_a_real_target_is_a_request_until_a_second_operator_approves(console_env):
    """Two-person rule (default on for a real target): setting force_calm stores a request, not the override."""
    at = login_verified(fleet(), "alice")
    at.radio(key="overrides_mode").set_value("force_calm").run()
    at.number_input(key="overrides_minutes").set_value(10.0)
    at.text_input(key="overrides_why").input("signal stuck in panic")
    at.button(key="overrides_set").click().run()
    assert not at.exception
    assert any(s.value.startswith("force_calm requested for 10 min") for s in at.success)
    assert not console_env.exists("brain:panic_override")
    request = pending_request(PanicClock(console_env))
    assert request is not None and request.why == "signal stuck in panic" and request.minutes == 10
    assert AuditTrail(console_env).entries()[-1].action == "force_calm_requested"


def test_read_only_without_login_on_a_real_target(console_env):
    """Against REDIS_URL without login the override controls are disabled and the page says read-only."""
    put_override(console_env)
    at = fleet()
    assert all(at.button(key=key).disabled for key in WRITE_BUTTONS)
    assert any(w.value.startswith("Read-only") for w in at.warning)


def test_click_after_login_lapsed_writes_nothing(console_env):
    """A set clicked after the login is gone writes nothing (no key, no audit entry) and the page says read-only.

    The breaker-level refusal (WriteRefused from set_override) is covered in tests/ops/test_overrides.py."""
    at = login(fleet())
    at.text_input(key="overrides_why").input("should not land")
    button = at.button(key="overrides_set")
    del at.session_state["operator"]
    button.click().run()
    assert any(w.value.startswith("Read-only") for w in at.warning)
    assert not console_env.exists("brain:panic_override")
    assert [e.action for e in AuditTrail(console_env).entries()] == ["login"]


def test_a_reason_is_required(console_env):
    """Set, extend and clear without a reason write nothing and say why."""
    put_override(console_env)
    at = login(fleet())
    for key in WRITE_BUTTONS:
        at.button(key=key).click().run()
        assert any(e.value.startswith("Say why") for e in at.error), key
    assert [e.action for e in AuditTrail(console_env).entries()] == ["override_set", "login"]


def test_extending_past_the_maximum_is_refused(monkeypatch, console_env):
    """An extension that would leave more than BREAKER_MAX_OVERRIDE_MIN is refused with the reason; nothing written."""
    monkeypatch.setenv("BREAKER_MAX_OVERRIDE_MIN", "30")
    put_override(console_env, minutes=25)
    at = login(fleet())
    assert at.number_input(key="overrides_minutes").max == 30
    at.number_input(key="overrides_extend_minutes").set_value(10.0)
    at.text_input(key="overrides_change_why").input("longer please")
    at.button(key="overrides_extend").click().run()
    assert any("lasts at most 30 minutes" in e.value for e in at.error)
    assert AuditTrail(console_env).entries()[-1].action == "login"


@pytest.mark.parametrize("raw", [
    b"**force_calm** <b>not json</b> [x](http://e)",
    json.dumps({"mode": "force_calm", "who": "x", "why": "y", "since": 1.0}).encode(),  # no end
    json.dumps({"mode": "force_nap", "who": "x", "why": "y", "since": 1.0, "until": 9e9}).encode(),
    b"\xff\xfe",
])
def test_an_override_that_does_not_parse_is_shown_as_text_on_every_page(console_env, raw):
    """A stored value workers ignore is flagged on every page with the reason and the raw value as code, never as
    markdown, and can be cleared."""
    console_env.set("brain:panic_override", raw, ex=600)
    at = open_console()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        assert banner(at).startswith("The stored override does not parse"), page
        shown = raw.decode("utf-8", "replace")
        assert any(c.value == shown for c in at.code), page
        assert any(t.value.startswith("reason: ") for t in at.text)
        assert not any(shown in m.value for m in (*at.markdown, *at.error, *at.warning))
    at = login(fleet())
    at.text_input(key="overrides_change_why").input("garbage from a script")
    at.button(key="overrides_clear").click().run()
    assert not console_env.exists("brain:panic_override")
    assert AuditTrail(console_env).entries()[-1].action == "override_clear"


def test_sandbox_writes_open_and_history_shows_the_episode(sandbox_env):
    """In the sandbox anyone sets an override; History's timeline then draws its episode and events."""
    at = fleet()
    at.text_input(key="overrides_why").input("drill")
    at.button(key="overrides_set").click().run()
    at.text_input(key="overrides_change_why").input("drill over")
    at.button(key="overrides_clear").click().run()
    at.switch_page("pages/history.py").run()
    assert not at.exception
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {trace.get("name") for trace in chart["data"]}
    assert {"override set", "override cleared"} <= names
    assert len(chart["layout"]["shapes"]) == 1
    [episode] = [d.value for d in at.dataframe if "ended" in d.value.columns]
    assert episode.iloc[0][["mode", "set by", "why", "ended"]].tolist() == ["force_full", "sandbox", "drill", "cleared"]


def test_extending_an_approved_force_calm_is_refused_under_the_rule(console_env):
    """Two-person rule on: the requester of an approved force_calm cannot lengthen it alone from the Fleet page."""
    from breaker.ops.overrides import set_override

    clock = PanicClock(console_env)
    approved = set_override(clock, AuditTrail(console_env), Principal.of("alice, approved by bob"),
                            mode="force_calm", minutes=5, why="stuck signal")
    at = login(fleet())
    at.number_input(key="overrides_extend_minutes").set_value(30.0)
    at.text_input(key="overrides_change_why").input("keep it calm")
    at.button(key="overrides_extend").click().run()
    assert not at.exception
    assert any("two-person" in e.value for e in at.error)
    assert read_override(clock).override.until == approved.until
    assert [e.action for e in AuditTrail(console_env).entries()] == ["override_set", "login"]


def test_an_override_key_of_another_type_is_flagged_and_the_fleet_page_stands(console_env):
    """An override key holding a list: every page's banner flags it (workers ignore it), the Fleet page still reads
    the fleet instead of saying Redis is unreachable."""
    console_env.rpush("brain:panic_override", "force_calm")
    at = open_console()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        assert banner(at).startswith("The stored override does not parse"), page
        assert not any(e.value.startswith("Redis unreachable") for e in at.error), page


def test_clear_override_withdraws_a_waiting_request(console_env):
    """Issue 20 item 5 in the console: with only a force_calm request waiting, Clear override is enabled, says it
    withdraws the request, and does (audited force_calm_withdrawn)."""
    from breaker.ops.approvals import request_force_calm

    request_force_calm(PanicClock(console_env), AuditTrail(console_env), Principal.of("rita"), minutes=5,
                       why="stuck signal")
    at = login(fleet())
    assert any("Clear override withdraws it too" in c.value for c in at.caption)
    at.text_input(key="overrides_change_why").input("signal recovered")
    at.button(key="overrides_clear").click().run()
    assert not at.exception
    assert pending_request(PanicClock(console_env)) is None
    assert any("request was withdrawn" in s.value for s in at.success)
    assert AuditTrail(console_env).entries()[-1].action == "force_calm_withdrawn"


def test_a_hand_written_override_shows_the_end_the_workers_apply(console_env):
    """A ten-hour force_full written by hand: workers honour it BREAKER_MAX_OVERRIDE_MIN from its since (60 min,
    the default). Every page said it was on for ten hours; the banner now gives the workers' end and the stored
    one, and once past the cap it is flagged as not in force while Live shows the clock's answers again."""
    now = server_now(console_env)
    value = {"mode": "force_full", "who": "hand", "why": "x", "since": now - 600, "until": now + 36_000}
    console_env.set("brain:panic_override", json.dumps(value))
    at = open_console()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        text = banner(at)
        assert text.startswith("Override **force_full** is on") and "Its stored end is" in text, page
        assert "at most 60 min from its start" in text and ("49 min" in text or "50 min" in text), page
    console_env.set("brain:panic_override", json.dumps({**value, "since": now - 3700}))
    at = open_console()
    assert banner(at).startswith("The stored override is not in force"), banner(at)
    assert any("BREAKER_MAX_OVERRIDE_MIN" in t.value for t in at.text if t.value.startswith("reason: "))
    assert "PANIC_FULL" not in [m.value for m in at.metric if m.label == "Mode"]
