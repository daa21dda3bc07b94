"""The address a login attempt comes from, as far as it can be trusted.

A peer's own address is a fact; an ``X-Forwarded-For`` header is a claim anyone can send. The claim
is believed only when the peer is one of the operator's proxies (``BREAKER_TRUSTED_PROXIES``), and
then only hop by hop from the right: the first address that is no trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

LOOPBACK = "127.0.0.1"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.9:51234
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def client_address(peer: object, forwarded_for: Sequence[str] | str | None,
                   trusted: Sequence[Network]) -> str:
    """The client's address: the peer's, or through trusted proxies the last untrusted X-Forwarded-For hop.

    ``peer`` None (Streamlit hides loopback peers) or anything that is not an address string counts as
    loopback. A hop that does not parse stops the walk at the last address known to be real.
    """
    current = _address(peer) if isinstance(peer, str) else None
    current = current or ipaddress.ip_address(LOOPBACK)
    if isinstance(forwarded_for, str):
        forwarded_for = [forwarded_for]
    hops = [hop for header in (forwarded_for or ()) for hop in str(header).split(",") if hop.strip()]
    while _is_trusted(current, trusted) and hops:
        hop = _address(hops.pop())
        if hop is None:
            break
        current = hop
    return str(current)


def _is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)
