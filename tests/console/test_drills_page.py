"""Drills page in AppTest: read-only refusals, login, audited drills, the force-clear dialog, sandbox."""

import time

from breaker import PanicClock
from breaker.ops import AuditTrail
from breaker.ops.drills import unreachable_loopback_url
from tests.console.conftest import login, open_console

WRITE_BUTTONS = ("drills_start", "drills_end", "drills_clear_open_button", "drills_multi")


def _drills(**_):
    return open_console("pages/drills.py")


def test_write_controls_disabled_when_not_logged_in(console_env):
    """Against REDIS_URL without login every write button is disabled and the page says read-only."""
    at = _drills()
    assert not at.exception
    assert all(at.button(key=key).disabled for key in WRITE_BUTTONS)
    assert not at.button(key="drills_failsafe").disabled  # touches no key
    assert any(w.value.startswith("Read-only") for w in at.warning)


def test_click_after_login_lapsed_writes_nothing(console_env):
    """A click that arrives after the login is gone writes nothing (no clock, no entry) and the page says read-only.

    The breaker-level refusal (WriteRefused) is covered in test_access.py."""
    at = login(_drills())
    button = at.button(key="drills_start")
    del at.session_state["operator"]
    button.click().run()
    assert any(w.value.startswith("Read-only") for w in at.warning)
    assert [e.action for e in AuditTrail(console_env).entries()] == ["login"]
    assert [k for k in console_env.keys("*") if not k.startswith(b"brain:login_failures:")] == [b"brain:audit"]


def test_failed_login_is_shown_and_audited(console_env):
    """A wrong password leaves the console read-only and adds a login_failed entry without the typed name."""
    at = login(_drills(), "mallory", "guess")
    assert any(e.value == "Wrong password." for e in at.sidebar.error)
    assert at.button(key="drills_start").disabled
    assert [(e.who, e.action) for e in AuditTrail(console_env).entries()] == [("(unverified name)", "login_failed")]


def test_logged_in_drill_writes_the_key_and_an_audit_entry(console_env):
    """After login a back-dated drill starts the clock 46 min back and audits who and why."""
    at = login(_drills())
    assert not at.button(key="drills_start").disabled
    at.number_input(key="drills_backdate").set_value(46.0)
    at.text_input(key="drills_reason").input("game day rehearsal")
    at.button(key="drills_start").click().run()
    assert not at.exception
    assert any("fleet tier 3" in s.value for s in at.success)
    reading = PanicClock(console_env).read(time.time())
    assert 46 * 60 - 5 < reading.duration_s < 46 * 60 + 30
    entries = AuditTrail(console_env).entries()
    assert [(e.who, e.action, e.why) for e in entries][-1] == ("alice (self-declared)", "panic_start",
                                                                    "game day rehearsal")


def test_running_panic_needs_overwrite(console_env):
    """A second drill is refused with a warning until overwrite is ticked."""
    PanicClock(console_env).start_drill(time.time(), backdate_s=60)
    at = login(_drills())
    at.number_input(key="drills_backdate").set_value(100.0)
    at.button(key="drills_start").click().run()
    assert any("already running" in w.value for w in at.warning)
    at.checkbox(key="drills_overwrite").check()
    at.button(key="drills_start").click().run()
    assert PanicClock(console_env).read(time.time()).duration_s > 99 * 60


def test_end_panic(console_env):
    """End panic deletes the clock and is audited."""
    PanicClock(console_env).start_drill(time.time())
    at = login(_drills())
    at.button(key="drills_end").click().run()
    assert not PanicClock(console_env).read(time.time()).exists
    assert AuditTrail(console_env).entries()[-1].action == "panic_end"


def test_force_clear_dialog_confirm_path(console_env):
    """The dialog refuses a short reason, then clears the zombie with a real one and audits it."""
    console_env.set("brain:panic_start_ts", "garbage")
    at = login(_drills())
    assert any(w.value.startswith("Zombie suspect") for w in at.warning)
    at.button(key="drills_clear_open_button").click().run()
    at.text_input(key="drills_clear_reason").input("short")
    at.button(key="drills_clear_confirm").click().run()
    assert any("at least 10 characters" in e.value for e in at.error)
    assert console_env.exists("brain:panic_start_ts")
    at.text_input(key="drills_clear_reason").input("garbage value left by a bad deploy")
    at.button(key="drills_clear_confirm").click().run()
    assert not at.exception
    assert not console_env.exists("brain:panic_start_ts")
    assert any(s.value == "Zombie clock cleared." for s in at.success)
    entry = AuditTrail(console_env).entries()[-1]
    assert (entry.who, entry.action, entry.why) == ("alice (self-declared)", "zombie_clear",
                                                    "garbage value left by a bad deploy")


def test_sandbox_writes_are_open(sandbox_env):
    """On the embedded server the page says sandbox and a drill works without login, audited as sandbox."""
    at = _drills()
    assert any(i.value.startswith("Sandbox") for i in at.info)
    assert not any(at.button(key=key).disabled for key in ("drills_start", "drills_multi"))
    at.button(key="drills_start").click().run()
    assert PanicClock(sandbox_env).read(time.time()).exists
    assert AuditTrail(sandbox_env).entries()[-1].who == "sandbox"


def test_fail_safe_drill_shows_answers(console_env):
    """The fail-safe drill shows PANIC_FULL answers and their latency, even read-only."""
    at = _drills()
    at.button(key="drills_failsafe").click().run()
    assert any(s.value.startswith("All 5 answers were (0, PANIC_FULL)") for s in at.success)
    table = at.dataframe[0].value
    assert list(table["mode"]) == ["PANIC_FULL"] * 5 and "latency (ms)" in table.columns
    # one precision for latencies everywhere (a tenth of a ms, as the health lines): issue 20
    assert all(round(v, 1) == v for v in table["latency (ms)"]), list(table["latency (ms)"])


def test_multi_worker_drill_shows_agreement(sandbox_env):
    """Threads and processes agree on one start; the scratch namespace is gone afterwards."""
    at = _drills()
    at.number_input(key="drills_threads").set_value(3)
    at.number_input(key="drills_processes").set_value(2)
    at.button(key="drills_multi").click().run()
    assert not at.exception
    assert any(s.value.startswith("All 5 workers agree on one start") for s in at.success)
    starts = set(at.dataframe[0].value["start"])
    assert len(starts) == 1 and next(iter(starts)).endswith(" UTC")  # a date, not a raw epoch
    assert [k for k in sandbox_env.keys("*") if b"drill:" in k] == []


def test_redis_down_drills_page(monkeypatch, console_env):
    """Unreachable Redis: an error state, no exception."""
    monkeypatch.setenv("REDIS_URL", unreachable_loopback_url())
    at = _drills()
    assert not at.exception
    assert any("Redis unreachable" in e.value for e in at.error)


def _has_button(at, key):
    return any(b.key == key for b in at.button)


def test_force_clear_dialog_cancel_and_dismissal(console_env):
    """Cancel stays drawn after a too-short reason and closes the dialog; a dismissed dialog stays closed."""
    console_env.set("brain:panic_start_ts", "garbage")
    at = login(_drills())
    at.button(key="drills_clear_open_button").click().run()
    at.text_input(key="drills_clear_reason").input("short")
    at.button(key="drills_clear_confirm").click().run()
    assert any("at least 10 characters" in e.value for e in at.error)
    assert _has_button(at, "drills_clear_cancel")
    at.button(key="drills_clear_cancel").click().run()
    assert not _has_button(at, "drills_clear_confirm")
    assert console_env.exists("brain:panic_start_ts")
    at.button(key="drills_clear_open_button").click().run()
    assert _has_button(at, "drills_clear_confirm")
    at.number_input(key="drills_stale_min").set_value(20).run()  # x/Esc leaves no trace; the next click elsewhere
    assert not _has_button(at, "drills_clear_confirm")
    assert console_env.exists("brain:panic_start_ts")


def test_logged_in_on_a_real_target_the_page_warns_where_writes_go(monkeypatch, console_env, redis_url):
    """Logged in against REDIS_URL, Drills warns that workers act on its writes (password redacted); Tiers says
    its replays write scratch keys only."""
    monkeypatch.setenv("REDIS_URL", redis_url.replace("redis://", "redis://:s3cret-pw@", 1))
    at = login(_drills())
    [banner] = [w.value for w in at.warning if w.value.startswith("Writes go to")]
    assert "redis://:***@127.0.0.1:" in banner and banner.endswith("workers act on them.")
    assert "s3cret-pw" not in banner
    at.switch_page("pages/tiers.py").run()
    assert any(i.value.startswith("Writes go to scratch keys on `redis://:***@") for i in at.info)
    assert not any(w.value.startswith("Writes go to") for w in at.warning)


def test_clearing_a_fed_clock_says_panic_clock_not_zombie(console_env):
    """A clock observed seconds ago is no zombie: the page says when it was observed and "Panic clock cleared."."""
    PanicClock(console_env).observe(time.time() - 5)
    at = login(_drills())
    assert any(c.value.startswith("No zombie: last observed") and c.value.endswith("s ago, expires by itself.")
               for c in at.caption)
    at.button(key="drills_clear_open_button").click().run()
    at.text_input(key="drills_clear_reason").input("drill finished, cleaning up")
    at.button(key="drills_clear_confirm").click().run()
    assert any(s.value == "Panic clock cleared." for s in at.success)
    assert AuditTrail(console_env).entries()[-1].detail["zombie"] is False


def _server_now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def test_a_console_host_two_hours_fast_starts_the_drill_in_server_time(monkeypatch, console_env):
    """Workers measure in the server's time (v2): a drill started from a console host whose clock is 2 h fast
    writes the start at the server's now (not 2 h ahead, which workers would replace as a broken clock)."""
    at = login(_drills())
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 7200)
    at.text_input(key="drills_reason").input("skewed host drill")
    at.button(key="drills_start").click().run()
    monkeypatch.setattr(time, "time", real)
    assert not at.exception
    start = float(console_env.get("brain:panic_start_ts"))
    assert abs(start - _server_now(console_env)) < 60


def test_a_console_host_two_hours_slow_sees_no_zombie_in_a_fresh_clock(monkeypatch, console_env):
    """A clock a worker just started is judged at the server's time: a console host 2 h slow does not call it a
    zombie that 'starts in the future' (which would invite a force-clear of a healthy panic)."""
    PanicClock(console_env).observe(_server_now(console_env))
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 7200)
    at = _drills()
    monkeypatch.setattr(time, "time", real)
    assert not at.exception
    assert not any("Zombie suspect" in w.value for w in at.warning)
