"""Every "now", "ago" and "left" is the server's time (SPEC section 6, "Truth (v3)"): History's ongoing episode,
the CLI's lines, one duration format."""

from __future__ import annotations

import dataclasses

import console.shared
from breaker import PanicClock
from breaker.ops import AuditTrail, Principal, start_panic
from tests.console.conftest import open_console

SKEW_S = 240.0  # the server's clock 4 min ahead of this machine's


def test_history_measures_an_ongoing_panic_at_the_server_time(monkeypatch, console_env):
    """A panic started 10 min ago (held 15 min) by the server's clock, with the server
    4 min ahead of the console's machine: the episode has lasted 14 min by the server's clock, which is what the
    workers measure; the console's own clock would say 10 min."""
    clock = PanicClock(console_env)
    now = clock.server_now()
    start_panic(clock, AuditTrail(console_env), Principal.of("alice", "operator"), now=now, why="drill", backdate_s=600,
                hold_s=900)
    real = console.shared.read_clock

    def skewed():
        reading = real()
        return None if reading is None else dataclasses.replace(reading, now=reading.now + SKEW_S)

    monkeypatch.setattr(console.shared, "read_clock", skewed)
    at = open_console("pages/history.py")
    assert not at.exception
    episodes = [frame.value.to_dict("records") for frame in at.dataframe if "peak tier" in frame.value.columns]
    [[episode]] = episodes
    assert episode["end"] == "ongoing" and episode["duration"] in ("14 min 00 s", "14 min 01 s")


def test_the_sidebar_check_time_is_the_servers(monkeypatch, console_env):
    """The sidebar's "checked at" is the server's time of the read (here an hour ahead), not this machine's."""
    import time

    import breaker.ops.fleet
    import breaker.ops.fleet_summary
    from breaker.ops.timefmt import format_ts

    real = breaker.ops.fleet.server_time
    monkeypatch.setattr(breaker.ops.fleet, "server_time", lambda reply: real(reply) + 3600)
    monkeypatch.setattr(breaker.ops.fleet_summary, "server_time", lambda reply: real(reply) + 3600)  # Live's read
    at = open_console()
    assert not at.exception
    [caption] = [c.value for c in at.sidebar.caption if c.value.startswith("checked at")]
    server_minutes = {format_ts(time.time() + 3600 + shift, time_only=True)[:5] for shift in (-60, 0, 60)}
    assert caption[len("checked at "):][:5] in server_minutes, caption
