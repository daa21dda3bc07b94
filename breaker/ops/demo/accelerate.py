"""Play a panic faster than time: move the stored start back, as the back-dated drill does.

Every reader (the workers, Live, the Fleet page, the exporter) measures the panic from the one stored
start, so moving it back by ``(speed - 1) × dt`` each ``dt`` makes all of them see the same accelerated
duration; moving it forward by ``dt`` holds the duration still (a paused demo). The move is a
compare-and-set (WATCH): a start some worker replaced meanwhile, or a clock that ended, is left alone.
The key's expiry is kept (``KEEPTTL``): the workers' observations own it.

The calm period is accelerated the same way: the clock ends when nobody has observed a panic for
``panic_key_ttl_s`` *scenario* seconds, which :func:`end_if_unobserved` applies (a compare-and-set on
the last observation).
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import WatchError

from ...clock import PanicClock, format_ts, parse_start


def move_start(clock: PanicClock, by_s: float) -> float | None:
    """Move the start ``by_s`` seconds earlier (later when negative); the new start, or None if untouched."""
    client: Any = clock.client
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(clock.start_key)
            start = parse_start(pipe.get(clock.start_key))
            if start is None:
                return None  # no clock, or one the workers will replace: not ours to move
            moved = start - by_s
            pipe.multi()
            pipe.set(clock.start_key, format_ts(moved), keepttl=True)
            pipe.execute()
            return moved
        except WatchError:
            return None


def end_if_unobserved(clock: PanicClock, now: float, calm_period_s: float) -> bool:
    """End the clock when its last panic observation is older than ``calm_period_s``; True when it did."""
    client: Any = clock.client
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(clock.last_seen_key)
            seen = parse_start(pipe.get(clock.last_seen_key))
            if seen is None or now - seen < calm_period_s:
                return False
            pipe.multi()
            pipe.delete(clock.start_key, clock.last_seen_key)
            pipe.execute()
            return True
        except WatchError:
            return False
