"""What the CLI tests share: minting an API token as an admin would, and reading the CLI's output and audit."""

from __future__ import annotations

import json

from breaker.ops.audit import AuditTrail
from breaker.ops.roles import Principal
from breaker.ops.tokens import TokenStore


def mint(client, name, role="operator", expires_s=None, by="root"):
    """An API token for ``name`` as admin ``by`` would issue it (its token_create entry is left out of
    ``actions``). Two tokens of one issuer are one person to the two-person rule: an approver's token comes
    from another admin."""
    token, _ = TokenStore(client).create(AuditTrail(client), Principal.of(by, "admin"), name=name, role=role,
                                         expires_s=expires_s, why="test")
    return token


def doc(result):
    return json.loads(result.stdout)


def actions(client):
    return [entry.action for entry in AuditTrail(client).entries() if entry.action != "token_create"]
