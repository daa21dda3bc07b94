"""Stand-ins and counters shared by the breaker tests."""

from __future__ import annotations

from breaker import refresh
from breaker.clock import format_ts


class StubClock:
    """A PanicClock stand-in: a subclass defines ``observe(now) -> Observation``; ``round_trip`` wraps it."""

    start_key = "brain:panic_start_ts"
    override_key = "brain:panic_override"
    scripting = True

    def round_trip(self, *, observe, now=None, **_):
        observation = self.observe(now) if observe else None
        return refresh.Reply(
            server_now=now,
            start_raw=format_ts(observation.start).encode() if observation else None,
            initialized=bool(observation and observation.initialized),
            replaced=observation.replaced_raw if observation else None,
            override_raw=None,
            override_len=0,
            beat=refresh.BEAT_WRITTEN,
        )


def round_trips(client) -> int:
    """The worker protocol's round trips the server has run: its script calls (EVALSHA, or EVAL once)."""
    stats = client.info("commandstats")
    return sum(stats.get(name, {"calls": 0})["calls"] for name in ("cmdstat_evalsha", "cmdstat_eval"))
