"""Who is asking: the one rule for a request's client address, used by every route that needs
one (the web door's limits, the staff console's sign-in limits).

The address of the direct peer is the client, unless that peer is a proxy the operator trusts
(``CERCLE_TRUSTED_PROXIES``; by default only one on the same machine, ``127.0.0.1`` and
``::1``, as uvicorn assumes). Only then is ``X-Forwarded-For`` read, from the right: each
trusted proxy appended the address it saw, so the first untrusted one is the client. Anything
further left was written by the client and is ignored, so a forged header cannot make one
guesser look like many. The server itself must not rewrite the address (uvicorn runs with
``proxy_headers=False``): this module is the only place the header is read.

Limits count *sources*: an IPv4 address, or an IPv6 /64 (one home or phone line gets a whole
/64, so counting single IPv6 addresses would give one guesser 2^64 sources).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

from starlette.requests import HTTPConnection

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

LOCAL = ("127.0.0.1", "::1")
HEADER = "x-forwarded-for"
MAX_HOPS = 16  # a longer header is not from proxies we know: read no further than this


class ProxyListError(ValueError):
    """A trusted-proxy entry that is neither an address nor a network."""


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` is believed."""

    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        """From addresses or networks (``10.0.0.0/8``, ``::1``); raises :class:`ProxyListError`
        naming the bad entry's position, never guessing."""
        networks: list[Network] = []
        for i, entry in enumerate(e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ProxyListError(f"entry {i + 1} is not an IP address or network") from exc
        return cls(tuple(networks))

    @classmethod
    def local(cls) -> TrustedProxies:
        """Only a proxy on the same machine (the default)."""
        return cls.parse(LOCAL)

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        ip = _ip(address)
        return ip is not None and any(ip in net for net in self.networks)

    def client(self, request: HTTPConnection) -> str | None:
        """The client's address for ``request`` (``None`` when the server gave no peer)."""
        peer = request.client.host if request.client else None
        if not self.trusts(peer):
            return peer
        forwarded = [h.strip() for h in request.headers.get(HEADER, "").split(",")][-MAX_HOPS:]
        for hop in reversed(forwarded):
            if not hop:
                break  # a broken header: trust nothing written before it
            if not self.trusts(hop):
                return hop if _ip(hop) is not None else peer
            peer = hop
        return peer

    def source(self, request: HTTPConnection) -> str | None:
        """What limits count for ``request``: its client's IPv4 address or IPv6 /64."""
        return source_of(self.client(request))


def source_of(address: str | None) -> str | None:
    """An IPv4 address as is, an IPv6 address as its /64; anything else as given."""
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip) if ip is not None else address


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not address:
        return None
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None
