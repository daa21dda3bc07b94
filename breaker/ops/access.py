"""Who someone is: console logins (own password, OIDC, the shared password) turned into a ``Principal``.

An operator is verified (their own salted scrypt hash in the ``[operators]`` table of ``secrets.toml``, an
OIDC identity on the ``BREAKER_OPERATORS`` allow-list, or an API token, ``breaker.ops.tokens``) or
self-declared (the shared operator password, a name anyone with it may type): the audit trail says which,
because the name and the credential kind go into it with every write. Each verified operator has a role
(``breaker.ops.roles``). Failed logins are slowed down in Redis (``LoginThrottle``) and audited without the
typed name unless it is an operator's (a password typed into the name field must not reach History).
Streamlit specifics (forms, ``st.secrets``, ``st.user``) stay in the console; this module only decides.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .audit import AuditTrail
from .credentials import hash_password, verify_password
from .login_throttle import FREE_PER_NAME, FREE_PER_NAME_GLOBAL, LoginThrottle
from .roles import (
    SELF_DECLARED,
    Principal,
    Role,
    RoleRefused,
    WriteAccess,
    WriteRefused,
    canonical_name,
    parse_role,
    unprintable_in_name,
)

MAX_NAME_LENGTH = 64
#: ``who`` of a failed login whose name is no operator's: the name may be a password typed in the wrong field.
UNVERIFIED_NAME = "(unverified name)"
#: Role of an ``[operators]`` entry without one, and of an allow-list entry without ``=role``.
DEFAULT_ROLE = Role.OPERATOR
#: Role of a self-declared name (shared password): the ordinary writes, nothing that needs a verified identity.
SHARED_ROLE = Role.OPERATOR

__all__ = ["SELF_DECLARED", "Principal", "Role", "RoleRefused", "WriteAccess", "WriteRefused"]


def write_access(*, embedded: bool, operator: Principal | None) -> Principal:
    """Sandbox (embedded server) with nobody logged in: writes open, audited as ``sandbox``. Real target: the
    logged-in principal, or an anonymous one that may not write."""
    if isinstance(operator, Principal):
        return operator
    if embedded:
        return Principal.sandbox()
    return Principal.anonymous()


def password_matches(attempt: str, expected: str | None) -> bool:
    """Constant-time comparison; no configured password means nobody logs in with one."""
    if not expected or not isinstance(attempt, str):
        return False
    return hmac.compare_digest(attempt.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class ConfiguredOperator:
    name: str
    hash: str
    role: Role


@dataclass(frozen=True)
class Credentials:
    """``operators``: name -> scrypt hash, or name -> {hash, role} (``[operators]`` in secrets.toml);
    ``roles``: name -> role (``[operator_roles]``, for the plain form); ``shared_password``: the old way."""

    operators: Mapping[str, Any] = field(default_factory=dict)
    shared_password: str | None = None
    roles: Mapping[str, str] = field(default_factory=dict)

    def operator(self, name: str) -> ConfiguredOperator | None:
        """The configured operator whose name is canonically ``name``, or None. A bad role is no operator."""
        wanted = canonical_name(name)
        for configured, stored in self.operators.items():
            if canonical_name(str(configured)) != wanted:
                continue
            if isinstance(stored, Mapping):
                hashed, role = str(stored.get("hash", "")), stored.get("role")
            else:
                hashed, role = str(stored), None
            if role is None:
                role = next((r for n, r in self.roles.items() if canonical_name(str(n)) == wanted), None)
            try:
                return ConfiguredOperator(str(configured), hashed, parse_role(role, DEFAULT_ROLE))
            except ValueError:
                return None
        return None

    def operator_hash(self, name: str) -> tuple[str, str] | None:
        """(the operator's name as configured, their hash) for ``name`` in any case, or None."""
        found = self.operator(name)
        return (found.name, found.hash) if found else None

    @property
    def configured(self) -> bool:
        return bool(self.operators) or bool(self.shared_password)

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any], shared_password: str | None = None) -> Credentials:
        """From a ``secrets.toml`` mapping: ``[operators]`` (``name = "scrypt$…"`` or ``name = {hash, role}``),
        ``[operator_roles]`` (``name = "approver"``) and ``operator_password`` (else ``shared_password``)."""
        table = secrets.get("operators") or {}
        roles = secrets.get("operator_roles") or {}
        operators = {str(k): (dict(v) if isinstance(v, Mapping) else str(v)) for k, v in dict(table).items()}
        return cls(operators, secrets.get("operator_password") or shared_password,
                   {str(k): str(v) for k, v in dict(roles).items()})


def allow_list_role(email: str | None, allow_list: Iterable[str]) -> Role | None:
    """The role ``alice@example.com`` has on the allow-list: its exact entry's, else its domain's
    (``@example.com``), each ``entry[=role]`` (default operator); None when not on it or the list is empty."""
    if not email or "@" not in email:
        return None
    email = canonical_name(email)
    domain = "@" + email.rpartition("@")[2]
    found: dict[str, Role] = {}
    for entry in allow_list:
        who, _, role = str(entry).partition("=")
        with contextlib.suppress(ValueError):
            found.setdefault(canonical_name(who), parse_role(role, DEFAULT_ROLE))
    return found.get(email) or found.get(domain)


def on_allow_list(email: str | None, allow_list: Iterable[str]) -> bool:
    """``alice@example.com`` is allowed by that exact entry or by ``@example.com``; nobody by an empty list."""
    return allow_list_role(email, allow_list) is not None


def oidc_operator(user: Mapping[str, Any], allow_list: Iterable[str]) -> tuple[Principal | None, str]:
    """The operator an OIDC login is, or None and why not (empty when nobody is logged in through OIDC)."""
    if not user.get("is_logged_in"):
        return None, ""
    email = str(user.get("email") or "")
    if user.get("email_verified") is False:
        return None, f"{email}: the identity provider has not verified this email"
    role = allow_list_role(email, allow_list)
    if role is None:
        return None, f"{email or 'this identity'} is not on the operator allow-list (BREAKER_OPERATORS)"
    return Principal(email.strip().lower(), role, "oidc"), ""


@dataclass(frozen=True)
class LoginOutcome:
    ok: bool
    operator: Principal | None
    message: str


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    """Unknown names cost one scrypt too, so that timing does not tell which names are operators."""
    return hash_password("decoy: no operator has this password")


def verify_console_credentials(name: str, password: str, credentials: Credentials) -> Principal | None:
    """The principal a name and password stand for, or None: an ``[operators]`` name logs in with its own
    password only (verified, its role); any other name with the shared password (self-declared, operator
    role). A name that is the shared password itself is refused (it would show the password on History)."""
    who = (name or "").strip()[:MAX_NAME_LENGTH]
    known = credentials.operator(who)
    if known is not None:
        return Principal(known.name, known.role, "password") if verify_password(known.hash, password) else None
    verify_password(_decoy_hash(), password)
    if not password_matches(password, credentials.shared_password) or _is_shared_password(who, credentials):
        return None
    return Principal(who, SHARED_ROLE, "shared")


def credential_stamp(principal: Principal, credentials: Credentials) -> str | None:
    """A fingerprint of what ``principal``'s password login rested on (their configured hash, or the shared
    password), kept with a console session so that a rotated password ends the sessions it opened; None when
    the configuration no longer admits them. Not a secret: a SHA-256 of a salted hash or of the shared password."""
    if principal.auth == "password":
        known = credentials.operator(principal.name)
        material = known.hash if known is not None else None
    elif principal.auth == "shared":
        shared = credentials.shared_password
        material = shared if shared and credentials.operator(principal.name) is None else None
    else:
        return ""
    return None if material is None else hashlib.sha256(material.encode("utf-8")).hexdigest()


def session_principal(principal: Principal, stamp: str | None, credentials: Credentials) -> Principal | None:
    """The principal a logged-in console session stands for now: a password login takes its operator's current
    role, and ends (None) when the operator was removed or their password changed; a self-declared one ends
    when the shared password changed or the name became an operator's. Others (OIDC is re-read every run, the
    sandbox) are unchanged."""
    if principal.auth not in ("password", "shared"):
        return principal
    if stamp is None or credential_stamp(principal, credentials) != stamp:
        return None
    if principal.auth == "password":
        known = credentials.operator(principal.name)
        return Principal(known.name, known.role, "password") if known is not None else None
    return principal


def _is_shared_password(name: str, credentials: Credentials) -> bool:
    shared = credentials.shared_password
    return bool(shared) and (password_matches(name, shared) or canonical_name(name) == canonical_name(shared))


def attempt_login(
    name: str,
    password: str,
    *,
    credentials: Credentials,
    throttle: LoginThrottle,
    client_key: str,
    trail: AuditTrail | None,
    audit_success: bool = True,
) -> LoginOutcome:
    """Check one login attempt and audit it.

    A name in ``credentials.operators`` logs in with its own password only (verified); any other name with
    the shared password (self-declared). Successes and wrong passwords are audited; an attempt refused
    during a delay only once per delay, so that retrying cannot flood the trimmed stream. A self-declared
    login is audited as ``(self-declared)`` without the typed name when that name is the shared password.
    """
    who = (name or "").strip()[:MAX_NAME_LENGTH]
    if not canonical_name(who):
        return LoginOutcome(False, None, "Enter your name: it goes into the audit trail with every write.")
    if unprintable_in_name(who):
        return LoginOutcome(False, None, "A name is letters, digits, spaces and punctuation: no control, "
                            "zero-width or text-direction characters.")
    if not credentials.configured:
        return LoginOutcome(
            False, None, "No operator credentials are configured (an [operators] table or operator_password in "
            ".streamlit/secrets.toml, or BREAKER_OPERATOR_PASSWORD)."
        )
    known = credentials.operator(who)
    audit_who = known.name if known else UNVERIFIED_NAME
    canonical = canonical_name(who)
    throttled = throttle.begin(client_key, canonical, known=known is not None)
    if throttled is not None:
        wait = throttled.retry_after_s
        if throttled.first:
            what = (f"more than {FREE_PER_NAME_GLOBAL} failed logins for this name from any address"
                    if throttled.per_name else f"more than {FREE_PER_NAME} failed logins for this name from this "
                    "address")
            _audit(trail, audit_who, "login_rate_limited",
                   f"{what}: next attempt in {wait:.0f} s; refusals during this delay are not audited")
        return LoginOutcome(False, None, f"Too many failed logins: try again in {wait:.0f} s.")
    operator = verify_console_credentials(who, password, credentials)
    if operator is None:
        if not known and _is_shared_password(who, credentials):
            why = "the name typed is the shared password: type your own name (the typed name is not recorded)"
            _audit(trail, audit_who, "login_failed", why)
            return LoginOutcome(False, None, "That name is not allowed: type your own name, not a password.")
        why = "wrong password" if known else "wrong password; the typed name is not recorded (it may be a password)"
        _audit(trail, audit_who, "login_failed", why)
        return LoginOutcome(False, None, "Wrong password.")
    throttle.succeeded(client_key, canonical, known=known is not None)
    how = ("own password (verified)" if operator.verified
           else "shared operator password: the name is self-declared")
    if audit_success:
        _audit(trail, operator.who, "login", how, operator)
    return LoginOutcome(True, operator, f"Logged in as {operator.who}.")


def _audit(trail: AuditTrail | None, who: str, action: str, why: str, principal: Principal | None = None) -> None:
    """Login auditing is best effort: a Redis outage must not lock operators out of a read-only view."""
    if trail is not None:
        with contextlib.suppress(Exception):
            trail.record(who=who, action=action, why=why, kind="login",
                         **(principal.audit() if principal else {}))
