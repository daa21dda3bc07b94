"""Failed logins slow a guesser down: growing delays per (address, name) and per address, kept in Redis.

In Redis (under the key prefix) rather than in the console process: every console replica shares the
counts, and no browser can reset them (Streamlit's ``clear_cache`` empties ``st.cache_resource`` for
everyone). Delays rather than a lockout: after a few free failures each further one doubles the wait,
up to a cap, so a guesser gets a handful of tries an hour while an operator is at most delayed, never
locked out. An attempt made during a delay is refused without checking the password and is not counted,
so nobody can push the delay beyond its cap. Counts are forgotten an hour after the last failure.

Keys are ``{prefix}login_failures:<sha256>``: neither the name (which may be a mistyped password) nor
the address appears in a key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import WatchError

from ..clock import client_key_prefix

KEY_NAME = "login_failures"
FREE_PER_NAME = 3  # (address, name): a typo or two costs nothing
MAX_DELAY_PER_NAME_S = 300.0
FREE_PER_ADDRESS = 10  # everyone behind one untrusted proxy shares an address: be generous
MAX_DELAY_PER_ADDRESS_S = 60.0
FORGET_AFTER_S = 3600


def delay_after(failures: int, free: int, cap: float) -> float:
    """Seconds to wait after ``failures`` failures: none up to ``free``, then 1, 2, 4, ... up to ``cap``."""
    if failures <= free:
        return 0.0
    return min(cap, 2.0 ** min(failures - free - 1, 30))


@dataclass(frozen=True)
class Throttled:
    """A refused attempt: how long to wait, whether the address (not the name) is slowed, and whether this is
    the first refusal of this delay (the one worth auditing)."""

    retry_after_s: float
    per_address: bool
    first: bool


class LoginThrottle:
    """``begin(address, name)`` before checking a password; ``succeeded`` after a good one."""

    def __init__(self, client: Any, *, key_prefix: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.key_prefix = client_key_prefix(client) if key_prefix is None else key_prefix
        self.clock = clock

    def _key(self, *parts: str) -> str:
        digest = hashlib.sha256("\0".join(("vix-breaker login", *parts)).encode("utf-8")).hexdigest()[:32]
        return f"{self.key_prefix}{KEY_NAME}:{digest}"

    def begin(self, address: str, name: str) -> Throttled | None:
        """None: go ahead (the attempt is counted as a failure until ``succeeded``). Else: wait."""
        pair, addr = self._key("name", address, name), self._key("address", address)
        for _ in range(5):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(pair, addr)
                    now = self.clock()
                    unlock_pair = _unlock(pipe.hmget(pair, "n", "last"), FREE_PER_NAME, MAX_DELAY_PER_NAME_S)
                    unlock_addr = _unlock(pipe.hmget(addr, "n", "last"), FREE_PER_ADDRESS, MAX_DELAY_PER_ADDRESS_S)
                    if now < max(unlock_pair, unlock_addr):
                        per_address = unlock_addr > now
                        key, unlock = (addr, unlock_addr) if per_address else (pair, unlock_pair)
                        first = _number(pipe.hget(key, "reported")) != unlock
                        pipe.multi()
                        pipe.hset(key, "reported", repr(unlock))
                        pipe.execute()
                        return Throttled(max(unlock_pair, unlock_addr) - now, per_address, first)
                    pipe.multi()
                    for key in (pair, addr):
                        pipe.hincrby(key, "n", 1)
                        pipe.hset(key, "last", repr(now))
                        pipe.expire(key, FORGET_AFTER_S)
                    pipe.execute()
                    return None
                except WatchError:
                    continue
        return Throttled(1.0, False, False)  # a storm of parallel attempts: this one waits

    def succeeded(self, address: str, name: str) -> None:
        """A good password: forget this name's failures from this address; the address gets its try back."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self._key("name", address, name))
        addr = self._key("address", address)
        pipe.hincrby(addr, "n", -1)
        pipe.expire(addr, FORGET_AFTER_S)
        pipe.execute()


def _number(raw: Any) -> float | None:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def _unlock(fields: list[Any], free: int, cap: float) -> float:
    failures, last = _number(fields[0]), _number(fields[1])
    if failures is None or last is None:
        return 0.0
    return last + delay_after(int(failures), free, cap)
