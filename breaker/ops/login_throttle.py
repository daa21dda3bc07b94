"""Failed logins slow a guesser down, in Redis, without letting a guesser lock anyone else out (SPEC section 12).

Two budgets, each a count of failures with growing delays once its free failures are used up:

- per (address, name): the guesser's own pair. 3 free failures, then 1, 2, 4 ... s up to 5 min. Someone else
  behind the same address, logging in under another name, never meets it.
- per name, across all addresses: bounds guesses against one operator however many addresses they come from
  (IPv6 addresses count per /64, the block one subscriber usually holds). 20 free failures an hour, then
  1, 2, 4 ... s up to 5 min. Names that are no operator's all share one budget, "the shared password", since
  every one of them is a guess at that password. An address that logged in successfully under a name in the
  last 30 days is not slowed by this budget: a guesser elsewhere cannot keep an operator out of their own
  usual place.

An attempt made during a delay is refused without checking the password and is not counted, so nobody can
push a delay beyond its cap. Counts are forgotten an hour after the last failure. In Redis rather than in the
console process: every replica shares the counts, and no browser can reset them (``clear_cache``). Keys are
``{prefix}login_failures:<sha256>``: neither the name (which may be a mistyped password) nor the address
appears in a key. Times are the Redis server's, like every "now" (SPEC section 6).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import WatchError

from ..clock import client_key_prefix, server_time

KEY_NAME = "login_failures"
FREE_PER_NAME = 3  # (address, name): a typo or two costs nothing
MAX_DELAY_PER_NAME_S = 300.0
FREE_PER_NAME_GLOBAL = 20  # one name, every address: a guesser with many addresses gets 20 tries, then slows
MAX_DELAY_PER_NAME_GLOBAL_S = 300.0
#: The budget every name that is no operator's shares: each such attempt is a guess at the shared password.
SHARED_PASSWORD_BUCKET = "\0shared password"
FORGET_AFTER_S = 3600
GOOD_ADDRESS_FOR_S = 30 * 86400  # a successful login's address is exempt from the per-name budget this long


def delay_after(failures: int, free: int, cap: float) -> float:
    """Seconds to wait after ``failures`` failures: none up to ``free``, then 1, 2, 4, ... up to ``cap``."""
    if failures <= free:
        return 0.0
    return min(cap, 2.0 ** min(failures - free - 1, 30))


def address_group(address: str) -> str:
    """The unit an address is counted in: an IPv4 address itself, an IPv6 address's /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        mapped = parsed.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


@dataclass(frozen=True)
class Throttled:
    """A refused attempt: how long to wait, whether the name's budget across addresses (rather than this
    address's pair) is the one used up, and whether this is the first refusal of this delay (worth auditing)."""

    retry_after_s: float
    per_name: bool
    first: bool


class LoginThrottle:
    """``begin(address, name)`` before checking a password; ``succeeded`` after a good one.

    ``name`` is the canonical name; ``known`` whether it is an operator's (else it counts against the shared
    password's budget)."""

    def __init__(self, client: Any, *, key_prefix: str | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.client = client
        self.key_prefix = client_key_prefix(client) if key_prefix is None else key_prefix
        self._clock = clock

    def clock(self) -> float:
        """The Redis server's time (one ``TIME``), so every console replica and the CLI agree on each wait;
        an injected ``clock`` in tests."""
        return self._clock() if self._clock is not None else server_time(self.client.time())

    def _key(self, *parts: str) -> str:
        digest = hashlib.sha256("\0".join(("vix-breaker login", *parts)).encode("utf-8")).hexdigest()[:32]
        return f"{self.key_prefix}{KEY_NAME}:{digest}"

    def _keys(self, address: str, name: str, known: bool) -> tuple[str, str, str]:
        group = address_group(address)
        bucket = name if known else SHARED_PASSWORD_BUCKET
        return self._key("pair", group, name), self._key("name", bucket), self._key("good", group, name)

    def begin(self, address: str, name: str, *, known: bool = True) -> Throttled | None:
        """None: go ahead (the attempt is counted as a failure until ``succeeded``). Else: wait."""
        pair, per_name, good = self._keys(address, name, known)
        for _ in range(5):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(pair, per_name)
                    now = self.clock()
                    unlock_pair = _unlock(pipe.hmget(pair, "n", "last"), FREE_PER_NAME, MAX_DELAY_PER_NAME_S)
                    unlock_name = 0.0 if pipe.exists(good) else _unlock(
                        pipe.hmget(per_name, "n", "last"), FREE_PER_NAME_GLOBAL, MAX_DELAY_PER_NAME_GLOBAL_S)
                    if now < max(unlock_pair, unlock_name):
                        by_name = unlock_name > unlock_pair
                        key, unlock = (per_name, unlock_name) if by_name else (pair, unlock_pair)
                        first = _number(pipe.hget(key, "reported")) != unlock
                        pipe.multi()
                        pipe.hset(key, "reported", repr(unlock))
                        pipe.execute()
                        return Throttled(max(unlock_pair, unlock_name) - now, by_name, first)
                    pipe.multi()
                    for key in (pair, per_name):
                        pipe.hincrby(key, "n", 1)
                        pipe.hset(key, "last", repr(now))
                        pipe.expire(key, FORGET_AFTER_S)
                    pipe.execute()
                    return None
                except WatchError:
                    continue
        return Throttled(1.0, False, False)  # a storm of parallel attempts: this one waits

    def succeeded(self, address: str, name: str, *, known: bool = True) -> None:
        """A good password: forget this pair's failures, give the name its try back, and remember the address
        as one this name logs in from (exempt from the per-name budget)."""
        pair, per_name, good = self._keys(address, name, known)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(pair)
        pipe.hincrby(per_name, "n", -1)
        pipe.expire(per_name, FORGET_AFTER_S)
        pipe.set(good, "1", ex=GOOD_ADDRESS_FOR_S)
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
