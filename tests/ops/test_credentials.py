"""Per-operator password hashes."""

from breaker.ops.credentials import hash_password, verify_password


def test_hash_verifies_and_is_salted():
    """The same password hashes differently each time and verifies against each hash."""
    first, second = hash_password("s3cret pass"), hash_password("s3cret pass")
    assert first != second and first.startswith("scrypt$")
    assert verify_password(first, "s3cret pass") and verify_password(second, "s3cret pass")
    assert not verify_password(first, "s3cret pasS")


def test_malformed_stored_hash_is_a_no_not_an_exception():
    """A typo in secrets.toml refuses the login instead of crashing the page."""
    for stored in ("", "plain", "scrypt$x$8$1$aa$bb", "bcrypt$1$2$3$4$5", "scrypt$16384$8$1$!!$??", None):
        assert verify_password(stored, "anything") is False
