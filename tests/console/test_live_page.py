"""Live page in AppTest against a real server: empty state, each tier, zombie, Redis down."""

import re
import time

import pytest

from breaker import PanicClock
from breaker.ops.drills import unreachable_loopback_url
from tests.console.conftest import open_console


def _modes(at):
    return [m.value for m in at.metric if m.label == "Mode"]


def _backdate(client, minutes, *, fed=True):
    clock = PanicClock(client)
    clock.start_drill(time.time(), backdate_s=minutes * 60, hold_s=900)
    if not fed:
        client.delete(clock.last_seen_key)


def test_empty_state_is_calm(console_env):
    """No clock: every class answers NORMAL with the base TTL, and the page says so."""
    at = open_console()
    assert not at.exception
    assert _modes(at) == ["NORMAL"] * 3
    assert [m.value for m in at.metric if m.label == "TTL"] == ["60 s"] * 3
    assert any("No panic clock" in s.value for s in at.success)
    assert not at.error and not at.warning


def test_clock_46_minutes_back_shows_each_class_tier(console_env):
    """The core acceptance check: 46 min back, high PANIC_FULL, medium PANIC_PARTIAL, low DEGRADED."""
    _backdate(console_env, 46)
    at = open_console()
    assert not at.exception
    assert _modes(at) == ["PANIC_FULL", "PANIC_PARTIAL", "DEGRADED"]
    assert [m.value for m in at.metric if m.label == "TTL"] == ["0 s", "5 s", "20 s"]
    [duration] = [m.value for m in at.metric if m.label == "Duration"]
    assert duration in ("46 min 00 s", "46 min 01 s")  # rounded: a page run of over 0.5 s shows the next second
    assert any(w.value.startswith("Tier 3: REVIEW_MARKET_CONDITIONS") for w in at.warning)


@pytest.mark.parametrize(("minutes", "modes", "banner"), [
    (5, ["PANIC_FULL", "PANIC_FULL", "PANIC_FULL"], None),
    (20, ["PANIC_FULL", "PANIC_FULL", "PANIC_PARTIAL"], None),
    (100, ["PANIC_PARTIAL", "DEGRADED", "NEW_NORMAL"], "Tier 4: MARKET_REGIME_CHANGE_SUSPECTED"),
    (400, ["NEW_NORMAL", "NEW_NORMAL", "NEW_NORMAL"], "Tier 4: MARKET_REGIME_CHANGE_SUSPECTED"),
])
def test_each_tier_and_its_banner(console_env, minutes, modes, banner):
    """A panic at each tier shows the right mode per class, and tier 4 raises the red banner."""
    _backdate(console_env, minutes)
    at = open_console()
    assert _modes(at) == modes
    errors = [e.value for e in at.error]
    assert (banner is None and not errors) or any(e.startswith(banner) for e in errors)


def test_base_ttl_caps_the_answer(console_env):
    """The operator's base TTL caps every TTL on the cards."""
    _backdate(console_env, 400)
    at = open_console()
    at.number_input(key="live_base_ttl").set_value(30).run()
    assert [m.value for m in at.metric if m.label == "TTL"] == ["30 s", "30 s", "30 s"]


def test_zombie_reasons_are_shown(console_env):
    """A clock without expiry and never observed by a worker is flagged, with reasons."""
    console_env.set("brain:panic_start_ts", repr(time.time() - 120))
    at = open_console()
    [zombie] = [w.value for w in at.warning if w.value.startswith("Zombie suspect")]
    assert "no expiry" in zombie and "no worker observation" in zombie
    assert [m.value for m in at.metric if m.label == "Expiry left"] == ["no expiry"]


def test_redis_down_shows_an_error_state(monkeypatch, console_env):
    """Unreachable Redis: an error state on the page and in the sidebar, no exception, refresh keeps going."""
    monkeypatch.setenv("REDIS_URL", unreachable_loopback_url())
    at = open_console()
    assert not at.exception
    assert any("Redis unreachable while reading the panic clock" in e.value for e in at.error)
    assert "PANIC_FULL" in at.error[0].value
    assert any("Redis unreachable" in m.value for m in at.sidebar.markdown)
    assert any(re.match(r"checked at \d\d:\d\d:\d\d UTC \(page load\): `\w+Error", c.value) for c in at.sidebar.caption)
    assert any(c.value.startswith("Redis unreachable · checked at") for c in at.main.caption)
    assert at.run().error  # the next refresh still renders the error, still no exception
    assert not at.exception


def test_sidebar_shows_target_prefix_and_health(monkeypatch, console_env, redis_url):
    """The sidebar names the target and prefix, flags a drill namespace, and shows health from the page's read."""
    monkeypatch.setenv("BREAKER_KEY_PREFIX", "drill7:")
    at = open_console()
    markdown = [m.value for m in at.sidebar.markdown]
    assert f"`{redis_url}`" in markdown and "`drill7:`" in markdown  # code spans wrap; st.code cut the URL off
    assert not at.sidebar.code
    badges = " ".join(m.value for m in at.sidebar.markdown)
    assert "drill namespace" in badges and "read-only" in badges
    assert re.search(r"Redis OK · [\d.]+ ms", badges)
    assert any(re.fullmatch(r"checked at \d\d:\d\d:\d\d UTC \(page load\)", c.value) for c in at.sidebar.caption)
    assert any(c.value.startswith("Redis OK · this read took") for c in at.main.caption)  # Live's own, refreshed


@pytest.mark.parametrize("raw", [b"1e308", b"-5", b"nan", "\u0661\u0662", b"\xff\xfe"])
def test_odd_stored_values_render_as_tier_one_zombies(console_env, raw):
    """Values a worker would replace render as a tier-1 zombie with reasons, never a traceback."""
    console_env.set("brain:panic_start_ts", raw, ex=900)
    at = open_console()
    assert not at.exception
    assert _modes(at) == ["PANIC_FULL"] * 3
    assert any(w.value.startswith("Zombie suspect") for w in at.warning)


def test_wrong_type_renders_as_a_zombie(console_env):
    """A hash at the clock's key is named in the verdict; the page still renders."""
    console_env.hset("brain:panic_start_ts", "a", "b")
    at = open_console()
    assert not at.exception
    assert any("holds a <hash>" in w.value for w in at.warning)


def test_hung_redis_shows_an_error_state_and_recovers(monkeypatch, console_env):
    """A stopped (SIGSTOP) server: the page shows the error after the short timeout; after SIGCONT it is live again."""
    import os
    import signal

    from breaker.ops.embedded import start_embedded_server

    server = start_embedded_server()
    try:
        monkeypatch.setenv("REDIS_URL", server.connection_url)
        os.kill(server._process.pid, signal.SIGSTOP)
        try:
            at = open_console()
            assert not at.exception
            assert any("Redis unreachable while reading the panic clock" in e.value for e in at.error)
        finally:
            os.kill(server._process.pid, signal.SIGCONT)
        at.run()
        assert not at.error and _modes(at) == ["NORMAL"] * 3
    finally:
        server.stop()


def test_bad_setting_stops_with_a_configuration_error(monkeypatch, console_env):
    """A setting the breaker cannot run with stops the page with a message naming the variable."""
    monkeypatch.setenv("BREAKER_KEY_PREFIX", "bad prefix")
    at = open_console()
    assert not at.exception
    assert any(e.value.startswith("Configuration error: BREAKER_KEY_PREFIX") for e in at.error)


def test_drills_and_tiers_use_the_values_set_on_live(console_env):
    """The zombie threshold and base TTL set on Live carry over to Drills and Tiers (and back), not page defaults."""
    PanicClock(console_env).observe(time.time() - 120)  # fed once, two minutes ago
    at = open_console()
    assert not any(w.value.startswith("Zombie suspect") for w in at.warning)
    at.number_input(key="live_stale_min").set_value(1).run()
    at.number_input(key="live_base_ttl").set_value(30).run()
    assert any("threshold 1 min 00 s" in w.value for w in at.warning)
    at.switch_page("pages/drills.py").run()
    assert at.number_input(key="drills_stale_min").value == 1
    assert any("threshold 1 min 00 s" in w.value for w in at.warning)
    at.switch_page("pages/tiers.py").run()
    assert at.number_input(key="tiers_base_ttl").value == 30
    at.number_input(key="tiers_base_ttl").set_value(45).run()
    at.switch_page("pages/live.py").run()
    assert at.number_input(key="live_base_ttl").value == 45
    assert at.number_input(key="live_stale_min").value == 1


def test_a_clock_that_is_no_zombie_says_when_it_was_observed(console_env):
    """Live does not claim workers fed a clock: it says when the clock was last observed."""
    _backdate(console_env, 5)
    at = open_console()
    [caption] = [c.value for c in at.caption if c.value.startswith("Zombie verdict")]
    assert caption.startswith("Zombie verdict: not a suspect: last observed") and "s ago" in caption
    assert "worker" not in caption


@pytest.mark.parametrize(("text", "span"), [("brain:", "`brain:`"), ("a`b", "`` a`b ``"), ("x``y`", "``` x``y` ```")])
def test_code_span_survives_backticks(text, span):
    """The sidebar's code spans use a fence longer than any backtick run in the text."""
    from console.shared import code_span

    assert code_span(text) == span


@pytest.mark.parametrize("raw", ["[Log in again](http://127.0.0.1:9/phish)", "![x](http://127.0.0.1:9/beacon.png)"])
def test_zombie_warning_shows_the_stored_value_as_text(console_env, raw):
    """Issue 14 finding 5 (AppTest): the warning's markdown escapes a stored link or image; it still shows the value."""
    console_env.set("brain:panic_start_ts", raw)
    for page in (None, "pages/drills.py"):
        at = open_console(page)
        [warning] = [w.value for w in at.warning if "Zombie suspect" in w.value]
        reasons = warning.splitlines()[1:]
        assert any(raw[:20] in line for line in reasons)
        assert all(re.fullmatch(r"- `[^`]+`", line) for line in reasons), reasons  # each a code span: literal


def test_the_clock_shows_when_the_heartbeats_cannot_be_read(monkeypatch, console_env, redis_url):
    """Live reads the clock with the heartbeats; when only the heartbeats fail (a workers hash too big for the
    timeout, an ACL user without HSCAN here: the fleet read pages with HSCAN, never HGETALL) the page still
    shows the clock and its tiers, not 'Redis unreachable … workers answer TTL 0', and says the fleet summary
    is unavailable."""
    from urllib.parse import urlsplit

    console_env.execute_command("ACL", "SETUSER", "nofleet", "reset", "on", ">pw-nofleet", "~*", "&*", "+@all",
                                "-hgetall", "-hscan")
    try:
        parts = urlsplit(redis_url)
        monkeypatch.setenv("REDIS_URL", f"redis://nofleet:pw-nofleet@{parts.hostname}:{parts.port}/0")
        PanicClock(console_env).start_drill(time.time(), backdate_s=46 * 60, hold_s=900)
        at = open_console()
        assert not at.exception
        assert not any(e.value.startswith("Redis unreachable") for e in at.error)
        assert [m.value for m in at.metric if m.label == "Mode"] == ["PANIC_FULL", "PANIC_PARTIAL", "DEGRADED"]
        assert any("heartbeats could not be read" in c.value for c in at.caption)
    finally:
        console_env.execute_command("ACL", "DELUSER", "nofleet")


def test_live_shows_an_epoch_change(console_env, monkeypatch):
    """Issue 24: workers still answering from epoch 1 while the counter says 2 (a new start, or one lost in a
    failover): Live says so, from the aggregates."""
    from breaker import VIXCircuitBreaker, refresh
    from breaker.ops import fleet_summary

    monkeypatch.setattr(refresh, "AGG_BUCKET_S", 1)
    monkeypatch.setattr(fleet_summary, "AGG_BUCKET_S", 1)
    old = VIXCircuitBreaker(console_env)
    old.get_ttl(60, "panic")
    console_env.delete("brain:panic_start_ts")
    VIXCircuitBreaker(console_env).get_ttl(60, "panic")  # the next start: epoch 2
    old._sync = old._sync._replace(at=-1e18)
    old._beat_at = -1e18
    old._unsteady()
    old.get_ttl(60, "panic")  # its beat: answered from epoch 1
    clock = PanicClock(console_env)
    first = clock.server_now()
    while clock.server_now() < int(first) + 1:
        time.sleep(0.05)
    at = open_console()
    assert not at.exception
    assert any("EPOCH CHANGED" in w.value and "Panic epoch 2" in w.value for w in at.warning)
