"""Per-operator password hashes: salted scrypt, stored as one self-describing string.

Format: ``scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>``. The parameters travel with the hash so that
they can be raised later without invalidating the hashes already in ``secrets.toml``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted, slow hash of ``password`` for the ``[operators]`` table of ``secrets.toml``."""
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty string")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, dklen=HASH_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(stored: str, attempt: str) -> bool:
    """Whether ``attempt`` matches ``stored``; False (never an exception) for a malformed stored hash."""
    if not isinstance(stored, str) or not isinstance(attempt, str):
        return False
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != SCHEME:
            return False
        n, r, p = int(n), int(r), int(p)
        if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
            return False
        salt_bytes, expected_bytes = base64.b64decode(salt, validate=True), base64.b64decode(expected, validate=True)
        digest = hashlib.scrypt(attempt.encode("utf-8"), salt=salt_bytes, n=n, r=r, p=p,
                                dklen=len(expected_bytes), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected_bytes)
