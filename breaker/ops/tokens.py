"""Per-operator API tokens for the CLI: issued by an admin, shown once, stored only as a salted hash.

A token is ``vxb_<id>_<secret>``: the id (12 hex digits) names it in lists, audits and revocations; the secret
is 32 random bytes. Redis keeps one hash, ``{prefix}tokens`` (the namespace's hash tag, so it lives in the
clock's cluster slot), with one JSON value per id: ``name``, ``role``, ``created``, ``expires``, ``revoked``, and
``salt`` + ``hash`` = HMAC-SHA256(salt, secret). A 32-byte random secret needs no slow hash (nobody can guess
it); the salt keeps two stored hashes of one secret apart. Whoever reads Redis learns no token; whoever can
write Redis can do anything anyway (Redis ACLs remain the outer wall, docs/access.md).
Times are the Redis server's; ``now`` is injectable for tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..clock import client_key_prefix, server_time
from .audit import AuditTrail
from .audited_write import Planned, audited_write
from .roles import Principal, Role, RoleRefused, WriteRefused, canonical_name, parse_role

TOKENS_KEY_NAME = "tokens"
TOKEN_PREFIX = "vxb_"
_TOKEN = re.compile(r"^vxb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
MAX_NAME_LENGTH = 64
#: Letters, digits and ``_ .@+-`` (an email fits): no control characters, and nothing that could pass for another
#: kind of name in the audit trail ("bob (self-declared)", "alice, approved by bob").
_NAME = re.compile(r"^\w[\w .@+-]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _issuer_chain(tokens: Mapping[Any, Any], auth: str) -> list[tuple[str, dict[str, Any]]]:
    """(id, stored record) of each token up the chain that issued the token behind ``auth`` (``token:<id>``):
    its issuer's token, that one's issuer's, and so on; empty for any other credential. ``tokens`` is the
    stored hash (``HGETALL {prefix}tokens``); a record that does not parse ends the chain."""
    stored = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in tokens.items()}
    chain: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    while auth.startswith("token:") and auth not in seen and len(seen) < 32:
        seen.add(auth)
        token_id = auth.removeprefix("token:")
        try:
            data = json.loads(stored.get(token_id) or "null")
            auth = str(data.get("created_by_auth", ""))
        except (ValueError, TypeError, AttributeError, RecursionError):
            break
        chain.append((token_id, data))
    return chain


def token_issuers(tokens: Mapping[Any, Any], auth: str) -> set[str]:
    """The canonical names of everyone up the chain that issued the token behind ``auth`` (empty for any other
    credential). The two-person rule counts two identities as one person when either is in the other's chain
    or their chains meet: an admin can mint tokens under any names, so the tokens one person issued (directly
    or through a token of theirs) are all that person."""
    names = (canonical_name(str(data.get("created_by", ""))) for _, data in _issuer_chain(tokens, auth))
    return {name for name in names if name}


class TokenRefused(WriteRefused):
    """A token that is malformed, unknown, expired or revoked: nothing was written."""


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s`` as seconds (> 0); ``ValueError`` otherwise."""
    match = _DURATION.match(text or "")
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"a duration is a number and a unit (s, m, h, d), e.g. 30d, got {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True)
class TokenRecord:
    """What is stored about a token (never the token): who it is for, the role, and its life."""

    id: str
    name: str
    role: str
    created: float
    expires: float | None
    revoked: float | None
    created_by: str = ""
    created_by_auth: str = ""  # the issuer's credential kind: ``token:<id>`` when a token issued this one

    def state(self, now: float) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "active"

    def public(self, now: float) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "created": self.created,
                "expires": self.expires, "revoked": self.revoked, "created_by": self.created_by,
                "created_by_auth": self.created_by_auth, "state": self.state(now)}


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("ascii"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class TokenStore:
    """Create, list, revoke and verify tokens in ``{prefix}tokens``."""

    def __init__(self, client: Any, *, key_prefix: str | None = None,
                 now: Callable[[], float] | None = None) -> None:
        self.client = client
        self.key = f"{client_key_prefix(client) if key_prefix is None else key_prefix}{TOKENS_KEY_NAME}"
        self._now = now

    def now(self) -> float:
        return self._now() if self._now is not None else server_time(self.client.time())

    def _record(self, raw: Any) -> tuple[TokenRecord, dict[str, Any]] | None:
        try:
            data = json.loads(raw)
            expires, revoked = data.get("expires"), data.get("revoked")
            return TokenRecord(str(data["id"]), str(data["name"]), parse_role(data["role"]).value,
                               float(data["created"]), None if expires is None else float(expires),
                               None if revoked is None else float(revoked), str(data.get("created_by", "")),
                               str(data.get("created_by_auth", ""))), data
        except (ValueError, KeyError, TypeError, RecursionError):
            return None

    def create(self, trail: AuditTrail, access: Principal, *, name: str, role: str | Role,
               expires_s: float | None, why: str) -> tuple[str, TokenRecord]:
        """Issue a token for ``name`` with ``role``: returns the token (shown once) and its record. Admins only."""
        access.require("creating a token", "token_create")
        shown = (name or "").strip()
        if not shown or len(shown) > MAX_NAME_LENGTH or not _NAME.match(shown):
            raise ValueError(f"a token's name is 1 to {MAX_NAME_LENGTH} letters, digits, spaces or _.@+- "
                             f"(starting with a letter or digit), got {shown!r}")
        role = parse_role(role)
        if expires_s is not None and not expires_s > 0:
            raise ValueError("expiry must be > 0 seconds")
        token_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_bytes(16)

        def plan(pipe: Any) -> Planned[tuple[str, TokenRecord]]:
            now = self.now()
            record = TokenRecord(token_id, shown, role.value, now, None if expires_s is None else now + expires_s,
                                 None, access.who, access.auth)
            value = json.dumps({**record.public(now), "salt": _b64(salt), "hash": _b64(_digest(salt, secret))})
            entry = dict(who=access.who, action="token_create", why=why or "", at=now, token=token_id, name=shown,
                         token_role=role.value, expires=record.expires, key=self.key, **access.audit())
            return Planned(entry, lambda tx: tx.hset(self.key, token_id, value),
                           (f"{TOKEN_PREFIX}{token_id}_{secret}", record))

        return audited_write(self.client, trail, watch=(self.key,), plan=plan)

    def list(self) -> list[TokenRecord]:
        """Every stored token's record, oldest first (no secrets: none are stored)."""
        records = [self._record(raw) for raw in self.client.hvals(self.key)]
        return sorted((r[0] for r in records if r is not None), key=lambda r: r.created)

    def revoke(self, trail: AuditTrail, access: Principal, token_id: str, *, why: str) -> bool:
        """Revoke ``token_id`` (kept, marked revoked, so lists show it); False when there is no such token."""
        access.require("revoking a token", "token_revoke")

        def plan(pipe: Any) -> Planned[bool] | bool:
            found = self._record(pipe.hget(self.key, token_id))
            if found is None:
                return False
            now = self.now()
            data = {**found[1], "revoked": found[0].revoked or now}
            entry = dict(who=access.who, action="token_revoke", why=why or "", at=now, token=token_id,
                         name=found[0].name, key=self.key, **access.audit())
            return Planned(entry, lambda tx: tx.hset(self.key, token_id, json.dumps(data)), True)

        return audited_write(self.client, trail, watch=(self.key,), plan=plan)

    def verify(self, token: str) -> Principal:
        """The principal a token stands for; ``TokenRefused`` for a malformed, unknown, expired or revoked one."""
        match = _TOKEN.match((token or "").strip())
        if not match:
            raise TokenRefused("the API token is malformed (expected vxb_<id>_<secret>)")
        token_id, secret = match.groups()
        found = self._record(self.client.hget(self.key, token_id))
        if found is None:
            raise TokenRefused(f"API token {token_id} is unknown")
        record, data = found
        try:
            salt, expected = base64.b64decode(data["salt"], validate=True), base64.b64decode(data["hash"],
                                                                                             validate=True)
        except (KeyError, ValueError, TypeError):
            raise TokenRefused(f"API token {token_id} is stored unreadably") from None
        if not hmac.compare_digest(_digest(salt, secret), expected):
            raise TokenRefused(f"API token {token_id} does not match")
        state = record.state(self.now())
        if state != "active":
            raise TokenRefused(f"API token {token_id} is {state}")
        if record.created_by_auth.startswith("token:"):
            # Revoking a (leaked) token revokes what it issued; its expiry does not carry over.
            for issuer, issuer_data in _issuer_chain(self.client.hgetall(self.key), record.created_by_auth):
                if issuer_data.get("revoked") is not None:
                    raise TokenRefused(f"API token {token_id} was issued by revoked token {issuer}")
        return Principal(record.name, parse_role(record.role), f"token:{token_id}")


__all__ = ["RoleRefused", "TokenRecord", "TokenRefused", "TokenStore", "parse_duration"]
