"""Who may write, and who someone is: the sandbox is open, a real target needs an operator.

An operator is verified (their own salted scrypt hash in the ``[operators]`` table of ``secrets.toml``,
or an OIDC identity on the ``BREAKER_OPERATORS`` allow-list) or self-declared (the shared operator
password, a name anyone with it may type): the audit trail says which, because the name goes into it
with every write. Failed logins are slowed down in Redis (``LoginThrottle``) and audited without the
typed name unless it is an operator's (a password typed into the name field must not reach History).
Streamlit specifics (forms, ``st.secrets``, ``st.user``) stay in the console; this module only decides.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .audit import AuditTrail
from .credentials import hash_password, verify_password
from .login_throttle import FREE_PER_ADDRESS, FREE_PER_NAME, LoginThrottle

MAX_NAME_LENGTH = 64
SELF_DECLARED = " (self-declared)"
#: ``who`` of a failed login whose name is no operator's: the name may be a password typed in the wrong field.
UNVERIFIED_NAME = "(unverified name)"


class WriteRefused(PermissionError):
    """A write was attempted without the right to write; nothing was written."""


@dataclass(frozen=True)
class Operator:
    """A logged-in person: ``method`` is ``password`` (own hash), ``oidc`` or ``shared`` (self-declared)."""

    name: str
    method: str

    @property
    def verified(self) -> bool:
        return self.method in ("password", "oidc")

    @property
    def audit_name(self) -> str:
        """The name the audit trail records: a self-declared name says so."""
        return self.name if self.verified else self.name + SELF_DECLARED


@dataclass(frozen=True)
class WriteAccess:
    """The right to write for one console session, and the name that goes into the audit trail.

    ``verified`` is True only for an operator whose identity was checked (own password or OIDC)."""

    allowed: bool
    who: str
    why_not: str = ""
    verified: bool = False

    def require(self, action: str) -> None:
        if not self.allowed:
            raise WriteRefused(f"{action} refused: {self.why_not}")


def write_access(*, embedded: bool, operator: Operator | str | None) -> WriteAccess:
    """Sandbox (embedded server): writes open. Real target: only a logged-in operator writes.

    A plain string is a name the caller vouches for (the CLI's ``--who``): recorded as given, not verified."""
    if isinstance(operator, Operator):
        return WriteAccess(True, operator.audit_name, verified=operator.verified)
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
class Credentials:
    """``operators``: name -> scrypt hash (``[operators]`` in secrets.toml); ``shared_password``: the old way."""

    operators: Mapping[str, str] = field(default_factory=dict)
    shared_password: str | None = None

    def operator_hash(self, name: str) -> tuple[str, str] | None:
        """(the operator's name as configured, their hash) for ``name`` in any case, or None."""
        folded = name.casefold()
        for configured, stored in self.operators.items():
            if str(configured).casefold() == folded:
                return str(configured), str(stored)
        return None

    @property
    def configured(self) -> bool:
        return bool(self.operators) or bool(self.shared_password)


def on_allow_list(email: str | None, allow_list: Iterable[str]) -> bool:
    """``alice@example.com`` is allowed by that exact entry or by ``@example.com``; nobody by an empty list."""
    if not email or "@" not in email:
        return False
    email = email.strip().lower()
    domain = "@" + email.rpartition("@")[2]
    return any(entry in (email, domain) for entry in allow_list)


def oidc_operator(user: Mapping[str, Any], allow_list: Iterable[str]) -> tuple[Operator | None, str]:
    """The operator an OIDC login is, or None and why not (empty when nobody is logged in through OIDC)."""
    if not user.get("is_logged_in"):
        return None, ""
    email = str(user.get("email") or "")
    if user.get("email_verified") is False:
        return None, f"{email}: the identity provider has not verified this email"
    if not on_allow_list(email, allow_list):
        return None, f"{email or 'this identity'} is not on the operator allow-list (BREAKER_OPERATORS)"
    return Operator(email.lower(), "oidc"), ""


@dataclass(frozen=True)
class LoginOutcome:
    ok: bool
    operator: Operator | None
    message: str


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    """Unknown names cost one scrypt too, so that timing does not tell which names are operators."""
    return hash_password("decoy: no operator has this password")


def attempt_login(
    name: str,
    password: str,
    *,
    credentials: Credentials,
    throttle: LoginThrottle,
    client_key: str,
    trail: AuditTrail | None,
) -> LoginOutcome:
    """Check one login attempt and audit it.

    A name in ``credentials.operators`` logs in with its own password only (verified); any other name with
    the shared password (self-declared). Successes and wrong passwords are audited; an attempt refused
    during a delay only once per delay, so that retrying cannot flood the trimmed stream.
    """
    who = (name or "").strip()[:MAX_NAME_LENGTH]
    if not who:
        return LoginOutcome(False, None, "Enter your name: it goes into the audit trail with every write.")
    if not credentials.configured:
        return LoginOutcome(
            False, None, "No operator credentials are configured (an [operators] table or operator_password in "
            ".streamlit/secrets.toml, or BREAKER_OPERATOR_PASSWORD)."
        )
    known = credentials.operator_hash(who)
    audit_who = known[0] if known else UNVERIFIED_NAME
    throttled = throttle.begin(client_key, who.casefold())
    if throttled is not None:
        wait = throttled.retry_after_s
        if throttled.first:
            what = (f"more than {FREE_PER_ADDRESS} failed logins from this address" if throttled.per_address
                    else f"more than {FREE_PER_NAME} failed logins for this name from this address")
            _audit(trail, audit_who, "login_rate_limited",
                   f"{what}: next attempt in {wait:.0f} s; refusals during this delay are not audited")
        return LoginOutcome(False, None, f"Too many failed logins: try again in {wait:.0f} s.")
    if known:
        operator = Operator(known[0], "password") if verify_password(known[1], password) else None
    else:
        verify_password(_decoy_hash(), password)
        matches = password_matches(password, credentials.shared_password)
        operator = Operator(who, "shared") if matches else None
    if operator is None:
        why = "wrong password" if known else "wrong password; the typed name is not recorded (it may be a password)"
        _audit(trail, audit_who, "login_failed", why)
        return LoginOutcome(False, None, "Wrong password.")
    throttle.succeeded(client_key, who.casefold())
    how = "own password (verified)" if operator.verified else "shared operator password: the name is self-declared"
    _audit(trail, operator.audit_name, "login", how)
    return LoginOutcome(True, operator, f"Logged in as {operator.audit_name}.")


def _audit(trail: AuditTrail | None, who: str, action: str, why: str) -> None:
    """Login auditing is best effort: a Redis outage must not lock operators out of a read-only view."""
    if trail is not None:
        with contextlib.suppress(Exception):
            trail.record(who=who, action=action, why=why, kind="login")
