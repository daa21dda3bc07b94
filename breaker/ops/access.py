"""Who may write: the sandbox is open, a real target needs an operator login.

The password check is constant-time (``hmac.compare_digest``) and failed logins are
rate limited per client address and operator name, and audited. Streamlit specifics (forms, ``st.secrets``,
``st.user``) stay in the pages; this module only decides.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .audit import AuditTrail

MAX_FAILURES = 5
FAILURE_WINDOW_S = 300.0
MAX_CLIENT_FAILURES = 10  # one shared password: changing the name must not buy more guesses
_SWEEP_MIN_KEYS = 1024
MAX_NAME_LENGTH = 64


class WriteRefused(PermissionError):
    """A write was attempted without the right to write; nothing was written."""


@dataclass(frozen=True)
class WriteAccess:
    """The right to write for one console session, and the name that goes into the audit trail."""

    allowed: bool
    who: str
    why_not: str = ""

    def require(self, action: str) -> None:
        if not self.allowed:
            raise WriteRefused(f"{action} refused: {self.why_not}")


def write_access(*, embedded: bool, operator: str | None) -> WriteAccess:
    """Sandbox (embedded server): writes open. Real target: only a logged-in operator writes."""
    if operator:
        return WriteAccess(True, operator)
    if embedded:
        return WriteAccess(True, "sandbox")
    return WriteAccess(False, "anonymous", "read-only: log in as an operator to write to this Redis")


def password_matches(attempt: str, expected: str | None) -> bool:
    """Constant-time comparison; no configured password means nobody logs in with one."""
    if not expected or not isinstance(attempt, str):
        return False
    return hmac.compare_digest(attempt.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class Lockout:
    """A refused login: how long to wait, whether the per-address cap refused it, and whether it is the
    first refusal of this lockout (the one worth auditing)."""

    retry_after_s: float
    per_address: bool
    first: bool


class LoginRateLimiter:
    """Failed logins counted per (client address, operator name), and more loosely per address.

    Per name as well as per address, so that one operator's wrong passwords behind a shared proxy do not
    lock out every other operator behind it; the per-address cap (``max_client_failures`` across all names)
    stops one address from guessing name after name. Thread-safe; one instance per console process.
    """

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = FAILURE_WINDOW_S,
        clock: Callable[[], float] = time.time,
        max_client_failures: int = MAX_CLIENT_FAILURES,
    ) -> None:
        if max_failures < 1 or window_s <= 0 or max_client_failures < max_failures:
            raise ValueError(
                "need max_failures >= 1, window_s > 0 and max_client_failures >= max_failures, got "
                f"{max_failures!r}, {window_s!r}, {max_client_failures!r}"
            )
        self.max_failures = max_failures
        self.max_client_failures = max_client_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[tuple[str, str | None], list[float]] = {}
        self._reported: dict[tuple[str, str | None], float] = {}
        self._sweep_above = _SWEEP_MIN_KEYS
        self._lock = threading.Lock()

    def check(self, client: str, name: str) -> Lockout | None:
        """None when ``name`` may try from ``client`` now; else the lockout.

        A lockout is identified by the moment it ends: a refused attempt records no failure, so that
        moment does not move until the lockout is over and new failures start a new one. Only the
        first check that meets a lockout gets ``first=True``; under the per-address cap that is once
        for the address, whichever names it tries.
        """
        now = self.clock()
        with self._lock:
            by_address = self._unlock_at((client, None), self.max_client_failures, now)
            by_name = self._unlock_at((client, name), self.max_failures, now)
            if by_address is None and by_name is None:
                return None
            key, unlock = ((client, None), by_address) if by_address is not None else ((client, name), by_name)
            first = self._reported.get(key) != unlock
            self._reported[key] = unlock
            return Lockout(max(u for u in (by_address, by_name) if u is not None) - now, by_address is not None,
                           first)

    def record_failure(self, client: str, name: str) -> None:
        now = self.clock()
        with self._lock:
            for key in ((client, None), (client, name)):
                self._failures.setdefault(key, []).append(now)
            if len(self._failures) > self._sweep_above:
                self._sweep(now)

    def reset(self, client: str, name: str) -> None:
        """A successful login clears that name's failures; the address keeps its count."""
        with self._lock:
            self._failures.pop((client, name), None)
            self._reported.pop((client, name), None)

    def _unlock_at(self, key: tuple[str, str | None], limit: int, now: float) -> float | None:
        recent = [t for t in self._failures.get(key, ()) if now - t < self.window_s]
        if not recent:
            self._failures.pop(key, None)
            self._reported.pop(key, None)
            return None
        self._failures[key] = recent
        return recent[-limit] + self.window_s if len(recent) >= limit else None

    def _sweep(self, now: float) -> None:
        """Forget keys with no failure left in the window, so many addresses and names cannot grow memory."""
        for key in [k for k, times in self._failures.items() if now - times[-1] >= self.window_s]:
            del self._failures[key]
            self._reported.pop(key, None)
        self._sweep_above = max(_SWEEP_MIN_KEYS, 2 * len(self._failures))


@dataclass(frozen=True)
class LoginOutcome:
    ok: bool
    operator: str | None
    message: str


def attempt_login(
    name: str,
    password: str,
    *,
    expected: str | None,
    limiter: LoginRateLimiter,
    client_key: str,
    trail: AuditTrail | None,
) -> LoginOutcome:
    """Check one login attempt and audit it.

    Successes and wrong passwords are audited (wrong passwords are themselves rate limited); a refused
    attempt only once per lockout, so an anonymous visitor retrying cannot flood the trimmed stream and
    push the operators' history out of it.
    """
    who = (name or "").strip()[:MAX_NAME_LENGTH]
    if not who:
        return LoginOutcome(False, None, "Enter your name: it goes into the audit trail with every write.")
    if not expected:
        return LoginOutcome(
            False, None, "No operator password is configured (set BREAKER_OPERATOR_PASSWORD or operator_password "
            "in .streamlit/secrets.toml)."
        )
    name_key = who.casefold()
    lockout = limiter.check(client_key, name_key)
    if lockout is not None:
        wait = lockout.retry_after_s
        if lockout.first:
            cap = (f"{limiter.max_client_failures} failed logins from this address" if lockout.per_address
                   else f"{limiter.max_failures} failed logins for this name")
            _audit(trail, who, "login_rate_limited", f"{cap}, locked for {wait:.0f} s; "
                   "further refusals in this lockout are not audited")
        return LoginOutcome(False, None, f"Too many failed logins: try again in {wait:.0f} s.")
    if not password_matches(password, expected):
        limiter.record_failure(client_key, name_key)
        _audit(trail, who, "login_failed", "wrong password")
        return LoginOutcome(False, None, "Wrong password.")
    limiter.reset(client_key, name_key)
    _audit(trail, who, "login", "operator password")
    return LoginOutcome(True, who, f"Logged in as {who}.")


def _audit(trail: AuditTrail | None, who: str, action: str, why: str) -> None:
    """Login auditing is best effort: a Redis outage must not lock operators out of a read-only view."""
    if trail is not None:
        with contextlib.suppress(Exception):
            trail.record(who=who, action=action, why=why, kind="login")

