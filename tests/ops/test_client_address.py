"""Issue 14 finding 2: the client address comes from X-Forwarded-For only through trusted proxies."""

import pytest

from breaker.ops.client_address import client_address, trusted_networks

LOCAL_PROXY = trusted_networks(["127.0.0.1/32", "::1/128"])


@pytest.mark.parametrize(("peer", "xff", "trusted", "expected"), [
    (None, None, (), "127.0.0.1"),                                    # Streamlit hides a loopback peer
    ("198.51.100.7", "203.0.113.9", (), "198.51.100.7"),              # untrusted peer: header ignored
    (None, "203.0.113.9", (), "127.0.0.1"),                           # no trust configured: header ignored
    (None, "203.0.113.9", LOCAL_PROXY, "203.0.113.9"),                # local proxy trusted
    (None, "6.6.6.6, 203.0.113.9", LOCAL_PROXY, "203.0.113.9"),       # a forged leftmost hop is not believed
    (None, ["6.6.6.6", "203.0.113.9, 10.0.0.2"], LOCAL_PROXY + trusted_networks(["10.0.0.0/8"]), "203.0.113.9"),
    (None, "not-an-ip", LOCAL_PROXY, "127.0.0.1"),                    # garbage stops at the last real address
    (None, "[2001:db8::1]:443", LOCAL_PROXY, "2001:db8::1"),
    ("::ffff:198.51.100.7", None, (), "198.51.100.7"),
    (object(), None, (), "127.0.0.1"),                                # AppTest's MagicMock peer
])
def test_client_address(peer, xff, trusted, expected):
    """X-Forwarded-For is walked from the right through trusted proxies only."""
    assert client_address(peer, xff, trusted) == expected
