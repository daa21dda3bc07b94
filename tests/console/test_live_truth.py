"""Live shows what the workers answer (SPEC section 6, "Truth (v3)"): the override's answer first on every
class card, the clock's tier beside it as "without the override", and heartbeats that report neither."""

from __future__ import annotations

import time

from breaker import PanicClock
from breaker.heartbeat import WORKERS_KEY_NAME, beat_json
from breaker.override import OVERRIDE_KEY_NAME, Override, OverrideMode
from tests.console.conftest import open_console


def _backdate(client, minutes):
    PanicClock(client).start_drill(time.time(), backdate_s=minutes * 60, hold_s=900)


def _override(client, mode, minutes=10):
    now = float(client.time()[0])
    client.set(f"brain:{OVERRIDE_KEY_NAME}", Override(mode, "alice", "drill", now, now + minutes * 60).to_json(),
               ex=minutes * 60)


def _metrics(at, label):
    return [m.value for m in at.metric if m.label == label]


def _captions(at):
    return [c.value for c in at.caption]


def test_force_full_during_a_100_minute_panic_shows_ttl_0_panic_full_first(console_env):
    """Every card: PANIC_FULL and TTL 0 s; the clock's tier (up to 4) as "without the override"."""
    _backdate(console_env, 100)
    _override(console_env, OverrideMode.FORCE_FULL)
    at = open_console()
    assert not at.exception
    assert _metrics(at, "Mode") == ["PANIC_FULL"] * 3
    assert _metrics(at, "TTL") == ["0 s"] * 3
    without = [c for c in _captions(at) if c.startswith("Without the override")]
    assert without == ["Without the override: tier 2 · PANIC_PARTIAL · TTL 5 s",
                       "Without the override: tier 3 · DEGRADED · TTL 30 s",
                       "Without the override: tier 4 · NEW_NORMAL · TTL 45 s"]
    banners = [e.value for e in at.error if e.value.startswith("Tier 4")]
    assert banners and "for low stakes" in banners[0] and "force_full override" in banners[0]


def test_force_calm_during_a_panic_shows_base_ttl_normal(console_env):
    _backdate(console_env, 20)
    _override(console_env, OverrideMode.FORCE_CALM)
    at = open_console()
    assert not at.exception
    assert _metrics(at, "Mode") == ["NORMAL"] * 3
    assert _metrics(at, "TTL") == ["60 s"] * 3
    assert sum(c.startswith("Without the override: tier") for c in _captions(at)) == 3


def test_heartbeats_that_report_neither_answer_are_named_on_the_card(console_env):
    """A worker reporting low stakes tier 1 under force_full at 100 min (clock tier 4): the card says so."""
    _backdate(console_env, 100)
    _override(console_env, OverrideMode.FORCE_FULL)
    now = float(console_env.time()[0])
    console_env.hset(f"brain:{WORKERS_KEY_NAME}", "odd:1:abcd", beat_json(
        host="odd", pid=1, started=now - 60, interval_s=1.0, calls={"DEGRADED": 5}, fail_safe=0,
        tiers={"low_stakes": 3}, override=None, error=None, version="3", seen=now))
    at = open_console()
    assert not at.exception
    warnings = [w.value for w in at.warning if w.value.startswith("Heartbeats disagree")]
    assert warnings == ["Heartbeats disagree: 1 worker tier 3, not the override's answer nor the clock's."]


def test_tier_3_banner_names_the_stakes_classes(console_env):
    _backdate(console_env, 46)
    at = open_console()
    [banner] = [w.value for w in at.warning if w.value.startswith("Tier 3")]
    assert "for low stakes" in banner
