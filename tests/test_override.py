"""The override's stored format: what parses, what is refused, and that nothing invalid reads as force_calm."""

import json

import pytest

from breaker import InvalidOverride, Override, OverrideMode, parse_override
from breaker.override import OVERRIDE_KEY_NAME


def _raw(**fields):
    base = {"mode": "force_full", "who": "alice", "why": "bad feed", "since": 100.0, "until": 700.0}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_round_trip_keeps_every_field():
    """to_json writes exactly mode, who, why, since, until; parse_override reads it back equal."""
    override = Override(OverrideMode.FORCE_CALM, "bob", "stuck signal", 10.0, 70.0)
    assert set(json.loads(override.to_json())) == {"mode", "who", "why", "since", "until"}
    assert parse_override(override.to_json()) == override
    assert parse_override(override.to_json().encode()) == override
    assert OVERRIDE_KEY_NAME == "panic_override"


def test_left_s_counts_down_to_zero():
    """left_s is the time to the end, never negative."""
    override = parse_override(_raw())
    assert override.left_s(400.0) == 300.0 and override.left_s(800.0) == 0.0
    assert override.active(699.0) and not override.active(700.0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "UTF-8"),
        ("force_calm", "JSON"),
        ("[1, 2]", "object"),
        (_raw(mode="force_normal"), "mode"),
        (_raw(mode=None), "mode"),
        (_raw(until=...), "end"),
        (_raw(until=None), "end"),
        (_raw(until="soon"), "until"),
        (_raw(until=float("inf")), "until"),
        (_raw(since=...), "since"),
        (_raw(until=50.0), "before"),
        (_raw(who=3), "who"),
        ("x" * 5000, "longer"),
        (None, "no override"),
        (12, "not text"),
    ],
)
def test_anything_else_is_invalid_with_a_reason(raw, reason):
    """Garbage, another mode, no end or a negative length raise InvalidOverride naming the problem."""
    with pytest.raises(InvalidOverride, match=reason):
        parse_override(raw)


def test_a_garbled_force_calm_is_not_force_calm():
    """A value that merely mentions force_calm is invalid, not a calm override."""
    with pytest.raises(InvalidOverride):
        parse_override('{"mode": "force_calm", "since": 1}')


class _Log:
    def __init__(self):
        self.events = []

    def warning(self, event, **fields):
        self.events.append(("warning", event, fields))

    def error(self, event, **fields):
        self.events.append(("error", event, fields))


def test_an_override_refused_for_a_future_since_is_honoured_once_its_since_comes():
    """Review (ops): a worker that first read an override while its `since` was over a minute ahead refused it,
    and then kept that verdict for as long as the stored value stayed the same: once `since` came, every reading
    (console, CLI, exporter) showed the override in force and workers started since honoured it, while the
    earlier workers ignored it until its end. The verdict is re-judged when `since` comes; logged once."""
    from breaker.ops.overrides import override_reading
    from breaker.override import FUTURE_SINCE_SLACK_S, HonouredOverride

    now = 1_700_000_000.0
    raw = Override(OverrideMode.FORCE_FULL, "tool", "x", now + 120, now + 1200).to_json()
    log = _Log()
    honoured = HonouredOverride(lambda: log, "brain:panic_override")
    honoured.adopt(raw, len(raw), now)
    honoured.adopt(raw, len(raw), now + 1)
    assert honoured.mode_at(now + 1) is None
    assert [e[1] for e in log.events].count("INVALID_PANIC_OVERRIDE") == 1  # logged once, not per round trip
    later = now + 120 - FUTURE_SINCE_SLACK_S + 1  # since is now within the slack: readings show it in force
    assert override_reading(raw, later).override is not None
    honoured.adopt(raw, len(raw), later)
    assert honoured.mode_at(later) is OverrideMode.FORCE_FULL
