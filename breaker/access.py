"""Who may write: the sandbox is open, a real target needs an operator login.

The password check is constant-time (``hmac.compare_digest``) and failed logins are
rate limited per client and audited. Streamlit specifics (forms, ``st.secrets``,
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


class LoginRateLimiter:
    """At most ``max_failures`` failed logins per client key within ``window_s``; thread-safe."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = FAILURE_WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_failures < 1 or window_s <= 0:
            raise ValueError(f"max_failures must be >= 1 and window_s > 0, got {max_failures!r}, {window_s!r}")
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._reported: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after_s(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may try now."""
        now = self.clock()
        with self._lock:
            unlock = self._unlock_at(key, now)
        return 0.0 if unlock is None else unlock - now

    def first_refusal(self, key: str) -> bool:
        """True for the first refused attempt of a lockout, False for the retries after it.

        A lockout is identified by the moment it ends: a refused attempt records no failure, so that
        moment does not move until the lockout is over and new failures start a new one.
        """
        now = self.clock()
        with self._lock:
            unlock = self._unlock_at(key, now)
            if unlock is None or self._reported.get(key) == unlock:
                return False
            self._reported[key] = unlock
            return True

    def record_failure(self, key: str) -> None:
        with self._lock:
            self._failures.setdefault(key, []).append(self.clock())

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._reported.pop(key, None)

    def _unlock_at(self, key: str, now: float) -> float | None:
        recent = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        self._failures[key] = recent
        if len(recent) < self.max_failures:
            return None
        return recent[-self.max_failures] + self.window_s


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
    wait = limiter.retry_after_s(client_key)
    if wait > 0:
        if limiter.first_refusal(client_key):
            _audit(trail, who, "login_rate_limited", f"{limiter.max_failures} failed logins, locked for {wait:.0f} s; "
                   "further refusals in this lockout are not audited")
        return LoginOutcome(False, None, f"Too many failed logins: try again in {wait:.0f} s.")
    if not password_matches(password, expected):
        limiter.record_failure(client_key)
        _audit(trail, who, "login_failed", "wrong password")
        return LoginOutcome(False, None, "Wrong password.")
    limiter.reset(client_key)
    _audit(trail, who, "login", "operator password")
    return LoginOutcome(True, who, f"Logged in as {who}.")


def _audit(trail: AuditTrail | None, who: str, action: str, why: str) -> None:
    """Login auditing is best effort: a Redis outage must not lock operators out of a read-only view."""
    if trail is not None:
        with contextlib.suppress(Exception):
            trail.record(who=who, action=action, why=why, kind="login")

