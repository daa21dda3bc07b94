"""Tiers and History pages in AppTest: charts, classifier, replay, audit table, episodes, failure states."""

import time

from breaker import AdaptivePanicQuota, PanicClock, VIXCircuitBreaker
from breaker.ops import AuditTrail, state_change_listener
from breaker.ops.drills import unreachable_loopback_url
from console.figures import figure_ttl_steps
from tests.console.conftest import login, open_console


def test_ttl_chart_has_three_classes_and_now(console_env):
    """The step chart draws one line per stakes class and marks "now" at the clock's duration."""
    PanicClock(console_env).start_drill(time.time(), backdate_s=46 * 60)
    at = open_console("pages/tiers.py")
    assert not at.exception
    spec = at.get("plotly_chart")[0].proto.spec
    assert all(name in spec for name in ("high_stakes", "medium_stakes", "low_stakes", '"now"'))


def test_ttl_figure_caps_at_base_and_marks_now():
    """figure_ttl_steps is a pure function: TTLs capped at the base TTL, a vertical line at now."""
    figure = figure_ttl_steps(AdaptivePanicQuota(), 30, now_min=46)
    high = next(t for t in figure.data if t.name == "high_stakes")
    assert list(high.x[:4]) == [0, 60, 180, 360] and list(high.y) == [0, 5, 30, 30, 30]
    assert figure.layout.shapes[0].x0 == 46


def test_classifier_names_class_and_rule(console_env):
    """Typing a competition shows its class and the rule that matched."""
    at = open_console("pages/tiers.py")
    assert [m.value for m in at.metric if m.label == "Stakes class"] == ["medium_stakes"]
    at.text_input(key="tiers_league").input("Ligue 2")
    at.text_input(key="tiers_competition").input("Coupe de France")
    at.text_input(key="tiers_stage").input("Final")
    at.run()
    assert [m.value for m in at.metric if m.label == "Stakes class"] == ["high_stakes"]
    assert any("keyword 'final' in stage" in c.value for c in at.caption)


def test_replay_disabled_read_only_and_runs_when_logged_in(console_env):
    """The replay writes a scratch namespace, so it needs a login; then it draws both modes and leaves no key."""
    at = open_console("pages/tiers.py")
    assert at.button(key="tiers_replay").disabled
    at = login(at)
    at.selectbox(key="tiers_scenario").select("flickering")
    at.button(key="tiers_replay").click().run()
    assert not at.exception
    spec = at.get("plotly_chart")[1].proto.spec
    assert "default (calm period)" in spec and "seed mode (end_on_normal)" in spec
    captions = [c.value for c in at.caption]
    assert any(c.startswith("seed mode (end_on_normal): highest tier reached 1") for c in captions)
    assert any(c.startswith("default (calm period): highest tier reached 4") for c in captions)
    assert console_env.keys("brain:replay:*") == []
    assert AuditTrail(console_env).entries()[-1].action == "scenario_replay"


def test_history_empty_state(console_env):
    """No stream yet: the page says so and shows no episode."""
    at = open_console("pages/history.py")
    assert not at.exception
    assert any(i.value.startswith("No history yet") for i in at.info)
    assert any(c.value == "No panic episode in the history." for c in at.caption)
    assert any(c.value.startswith("The newest 1000 entries of the stream `brain:audit` (which keeps the newest 10000)")
               for c in at.caption)


def test_history_lists_actions_and_state_changes_with_episode(console_env):
    """A drill, a worker's state changes and an end show in the table, the timeline and one closed episode."""
    at = login(open_console("pages/drills.py"))
    at.number_input(key="drills_backdate").set_value(46.0)
    at.button(key="drills_start").click().run()
    worker = VIXCircuitBreaker(console_env, on_state_change=state_change_listener(AuditTrail(console_env), "w1"))
    worker.get_ttl(60, "panic", {"league": "Ligue 2"})
    at.button(key="drills_end").click().run()
    at.switch_page("pages/history.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["what"]) == ["panic_end", "state_change", "panic_start", "login"]
    alice = "alice (self-declared)"  # logged in with the shared operator password
    assert list(table["who"]) == [alice, "w1", alice, alice]
    [episode] = at.dataframe[1].value.to_dict("records")
    assert episode["peak tier"] == 3 and episode["end"] != "ongoing"
    assert "fleet tier" in at.get("plotly_chart")[0].proto.spec


def test_history_filters(console_env):
    """Filtering by kind and by who narrows the table."""
    trail = AuditTrail(console_env)
    trail.record(who="alice", action="panic_start", why="drill", tier=1)
    trail.record(who="bob", action="login_failed", kind="login")
    at = open_console("pages/history.py")
    at.multiselect(key="history_kinds").set_value(["login"]).run()
    assert list(at.dataframe[0].value["who"]) == ["bob"]
    at.multiselect(key="history_kinds").set_value(["operator", "login", "state_change"])
    at.text_input(key="history_who").input("ali").run()
    assert list(at.dataframe[0].value["who"]) == ["alice"]


def test_history_and_tiers_with_redis_down(monkeypatch, console_env):
    """Unreachable Redis: History shows an error state, Tiers still draws its chart; no exception."""
    monkeypatch.setenv("REDIS_URL", unreachable_loopback_url())
    at = open_console("pages/history.py")
    assert not at.exception and any("Redis unreachable while reading the audit trail" in e.value for e in at.error)
    at.switch_page("pages/tiers.py").run()
    assert not at.exception and at.get("plotly_chart")


def test_oidc_user_may_write(monkeypatch, console_env):
    """A user logged in through Streamlit's OIDC and on the allow-list writes under their email."""
    monkeypatch.setenv("BREAKER_OPERATORS", "ops@example.com")
    at = open_console("pages/drills.py")
    at.user = {"is_logged_in": True, "email": "ops@example.com"}
    at.run()
    assert not at.button(key="drills_start").disabled
    assert any("logged in" in m.value for m in at.sidebar.markdown)
    assert [t.value for t in at.sidebar.text] == ["ops@example.com"]


def test_history_survives_malformed_entries(console_env):
    """Issue 14 finding 7: entries with at=nan, at=1e20, panic_start="abc", hold_until="soon" are flagged."""
    from tests.ops.test_audit import MALFORMED

    for fields in MALFORMED:
        console_env.xadd("brain:audit", fields)
    at = open_console("pages/history.py")
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == len(MALFORMED) and all(table["problem"])


def test_history_survives_override_entries_with_impossible_times(console_env):
    """Override entries whose until/since lie outside the calendar (written by anyone who can XADD) never fail
    History: the override episodes and the timeline keep standing."""
    import json as _json

    now = time.time()
    for action, detail in (("override_set", {"mode": "force_full", "until": -1e20, "since": now}),
                           ("override_clear", {"mode": "force_full"}),
                           ("override_extend", {"mode": "force_calm", "until": 1e20, "since": 1e20}),
                           ("override_clear", {"mode": "force_calm"}),
                           ("override_set", {"mode": "force_full", "until": 1e300})):
        console_env.xadd("brain:audit", {"at": repr(now), "kind": "operator", "who": "mallory", "action": action,
                                         "why": "x", "detail": _json.dumps(detail)})
    at = open_console("pages/history.py")
    assert not at.exception


def test_history_shows_a_change_of_panic_epoch(console_env):
    """A start lost behind the workers' backs (a failover, say) and a new one: History says the epoch changed
    and from which to which (issue 24), instead of a silent restart at tier 1."""
    worker = VIXCircuitBreaker(console_env, refresh_interval_s=0,
                               on_state_change=state_change_listener(AuditTrail(console_env), "w1"))
    worker.get_ttl(60, "panic", {"league": "Ligue 2"})
    console_env.delete("brain:panic_start_ts")  # lost: no operator ended or cleared it
    worker.get_ttl(60, "panic", {"league": "Ligue 2"})
    at = open_console("pages/history.py")
    assert not at.exception
    assert any("The panic epoch changed 1 time(s)" in w.value for w in at.warning), [w.value for w in at.warning]
    [change] = next(d.value.to_dict("records") for d in at.dataframe if "to epoch" in d.value.columns)
    assert (change["from epoch"], change["to epoch"], change["reported by"]) == (1, 2, "w1")
