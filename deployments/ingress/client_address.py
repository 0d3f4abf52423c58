"""Which client a request comes from: the peer, or, behind a trusted proxy, the ``X-Forwarded-For`` entry
that proxy vouches for. Per-address budgets (wrong keys, uploads in flight, the keyless rate limit)
count by it.

``X-Forwarded-For`` is believed only when the peer is in ``TRUSTED_PROXIES`` (CIDRs): anyone else
could write any address there and get a fresh budget per request. The list is walked from the right
(the entry the nearest proxy added) past every trusted hop; the first untrusted entry is the client.

Note that Serve's own HTTP proxy runs uvicorn with ``proxy_headers`` on, whose default
``FORWARDED_ALLOW_IPS`` is ``127.0.0.1,::1``: for a peer on loopback the address reaching this code is
already uvicorn's reading of ``X-Forwarded-For``. A reverse proxy on the same host is covered by that;
clients that can connect from loopback themselves are trusted as far as uvicorn trusts them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddresses:
    """``address(scope)``: the client's address as text (``"unknown"`` when the server gave none)."""

    def __init__(self, trusted: Iterable[Network] = ()) -> None:
        self.trusted = tuple(trusted)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def address(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        if not self.trusted or not self._trusted(peer):
            return peer
        forwarded = Headers(scope=scope).getlist("x-forwarded-for")
        hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer
