"""Who someone is and what they may write: the principal, its role, and the one table of writes and roles.

A ``Principal`` is what every write in ``breaker.ops`` takes as ``access``: a display name, the role it was
given, and the kind of credential that verified it (``auth``: ``password``, ``oidc``, ``token:<id>``,
``shared`` for a self-declared name, ``sandbox``, ``anonymous``). ``WRITES`` says, per write, the least role
and whether the name must be verified; ``Principal.require`` checks it where the write happens, so a hidden
button is never the only guard. Names are compared by ``canonical_name`` only.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass

from ..config import OPERATOR_ROLES

SELF_DECLARED = " (self-declared)"


class WriteRefused(PermissionError):
    """A write was attempted without the right to write; nothing was written."""


class RoleRefused(WriteRefused):
    """The principal's role (or an unverified name) does not allow this write; nothing was written or audited."""


class Role(enum.Enum):
    """Roles, least privilege first; a higher ``rank`` may do what a lower one may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return OPERATOR_ROLES.index(self.value)


def parse_role(value: str | Role | None, default: Role = Role.OPERATOR) -> Role:
    """A role from its name (any case); ``default`` for None or empty; ``ValueError`` naming the roles otherwise."""
    if isinstance(value, Role):
        return value
    text = (value or "").strip().lower()
    if not text:
        return default
    try:
        return Role(text)
    except ValueError:
        raise ValueError(f"role must be one of {', '.join(OPERATOR_ROLES)}, got {value!r}") from None


def canonical_name(name: str | None) -> str:
    """The one form in which names are compared: NFKC, case-folded, trimmed ("Bob", " bob", "ｂｏｂ" are one), and
    without invisible format characters (zero-width space and joiners, soft hyphen, BOM, bidi controls: Unicode
    category Cf), which NFKC keeps. Confusables across scripts (Cyrillic "а" for Latin "a") stay distinct
    names: see docs/access.md, "Canonical names"."""
    text = unicodedata.normalize("NFKC", name or "")
    return "".join(c for c in text if unicodedata.category(c) != "Cf").casefold().strip()


def unprintable_in_name(name: str) -> bool:
    """Whether a typed name holds a control or format character (a newline, an escape, a zero-width or bidi
    character): what a reader of History would not see, or would see as another name."""
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in name)


@dataclass(frozen=True)
class Write:
    """What a write needs: the least role, and whether a self-declared name is enough."""

    role: Role
    verified: bool = False


#: Every write of breaker.ops and what it needs (docs/access.md shows this table; tests check it).
WRITES: dict[str, Write] = {
    "panic_start": Write(Role.OPERATOR),
    "panic_end": Write(Role.OPERATOR),
    "zombie_clear": Write(Role.OPERATOR),
    "override_set": Write(Role.OPERATOR),  # force_full; force_calm alone only in the sandbox (else break_glass)
    "override_extend": Write(Role.OPERATOR),
    "override_clear": Write(Role.OPERATOR),
    "drill": Write(Role.OPERATOR),  # drills and replays that write (scratch keys, the audit trail)
    "force_calm_request": Write(Role.OPERATOR, verified=True),
    "force_calm_approve": Write(Role.APPROVER, verified=True),
    "override_schedule": Write(Role.OPERATOR),  # a force_full window: as override_set
    "override_schedule_calm": Write(Role.OPERATOR, verified=True),  # a force_calm window: as force_calm_request
    "override_schedule_cancel": Write(Role.OPERATOR),  # as override_clear
    "override_window_approve": Write(Role.APPROVER, verified=True),  # a scheduled force_calm: as force_calm_approve
    "break_glass": Write(Role.ADMIN, verified=True),  # force_calm without a second person on a real target
    "token_create": Write(Role.ADMIN, verified=True),
    "token_revoke": Write(Role.ADMIN, verified=True),
    "notify_retry": Write(Role.OPERATOR),  # send a dead-lettered notification again
}

VERIFIED_AUTH = ("password", "oidc")


@dataclass(frozen=True)
class Principal:
    """A person (or the sandbox) as the tools know them.

    ``name``: as configured or verified (an email for OIDC; the typed name for the shared password);
    ``role``: None when nobody is logged in; ``auth``: the credential kind, recorded with every write;
    ``why_not``: what to tell someone who may not write at all."""

    name: str
    role: Role | None
    auth: str
    why_not: str = ""

    @property
    def canonical(self) -> str:
        return canonical_name(self.name)

    @property
    def verified(self) -> bool:
        """An identity a credential of its own proved: own password, OIDC, an API token (or the sandbox)."""
        return self.auth in VERIFIED_AUTH or self.auth.startswith("token:") or self.auth == "sandbox"

    @property
    def who(self) -> str:
        """The name the audit trail, banners and approvals show: a self-declared one says so."""
        return self.name + SELF_DECLARED if self.auth == "shared" else self.name

    @property
    def role_name(self) -> str:
        return self.role.value if self.role is not None else ""

    @property
    def allowed(self) -> bool:
        """Whether this principal may make the ordinary writes (operator and above): what pages enable on."""
        return self.may("panic_start")

    def may(self, write: str) -> bool:
        return self.refusal(write) is None

    def refusal(self, write: str) -> str | None:
        """Why ``write`` is refused to this principal, or None when it is allowed."""
        need = WRITES[write]
        if self.role is None:
            return self.why_not or "read-only: log in as an operator to write to this Redis"
        if self.role.rank < need.role.rank:
            return f"{self.who} has the role {self.role.value}; this needs {need.role.value} or higher"
        if need.verified and not self.verified:
            return f"{self.who} is a self-declared name (shared password); this needs a verified identity " \
                   "(own password, SSO or an API token)"
        return None

    def require(self, action: str, write: str = "panic_start") -> None:
        """Raise ``RoleRefused`` (nothing written, nothing audited) unless this principal may ``write``."""
        why = self.refusal(write)
        if why is not None:
            raise RoleRefused(f"{action} refused: {why}")

    def audit(self) -> dict[str, str]:
        """The audit fields every operator entry carries: ``auth`` and ``role`` (SPEC section 12)."""
        return {"auth": self.auth, "role": self.role_name}

    # ---- how callers build one ------------------------------------------------------------------------------

    @classmethod
    def sandbox(cls) -> Principal:
        """The embedded server's console: writes open (audited as ``sandbox``), reaching no worker."""
        return cls("sandbox", Role.ADMIN, "sandbox")

    @classmethod
    def of(cls, name: str, role: str | Role = Role.OPERATOR, auth: str = "password") -> Principal:
        """A principal by hand (tests, tools that verified someone themselves): ``Principal.of("alice",
        "approver")`` is a verified alice; ``auth="shared"`` a self-declared name."""
        return cls(name, parse_role(role), auth)

    @classmethod
    def anonymous(cls, why_not: str = "") -> Principal:
        return cls("anonymous", None, "anonymous", why_not or "read-only: log in as an operator to write to this Redis")


#: The old name of the ``access`` argument's type, kept so annotations elsewhere keep reading.
WriteAccess = Principal
