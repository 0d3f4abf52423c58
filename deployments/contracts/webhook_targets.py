"""Which webhook URLs the service may call (SSRF guard), shared by submission and delivery.

Only http(s) URLs on ports 80 and 443 whose host resolves to public addresses; private, loopback,
link-local, multicast, reserved and unspecified addresses are refused, and so is an IPv6 address that
carries any such IPv4 address inside it (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d``,
6to4 ``2002:AABB:CCDD::``, Teredo ``2001::/32``), or that can only carry one (IPv4-compatible
``::a.b.c.d``, local-use NAT64 ``64:ff9b:1::/48``). A host listed in ``WEBHOOK_ALLOWED_HOSTS`` may be
private and use any port.

The name is resolved once per check, and ``resolve_webhook_target`` returns the checked addresses: the
delivery connects to one of them (``deployments/jobs/delivery.py``), so a name that answers a public
address to the check and 127.0.0.1 to the connection (DNS rebinding) cannot reach 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from deployments.contracts.errors import InvalidWebhookError

MAX_URL = 2048
PORTS = (80, 443)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local use, never a public receiver
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291's deprecated IPv4-compatible form (and ::, ::1)


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL and the addresses its host resolved to (in the resolver's order, every one checked):
    the delivery connects to these, and to nothing else."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _addresses(url: str, host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidWebhookError(url, f"the host does not resolve ({exc})") from None
    if not infos:
        raise InvalidWebhookError(url, "the host does not resolve (no address)")
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (none for an IPv4 address or a native IPv6 one)."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)  # the Teredo server and the (de-obfuscated) client
    if address in _NAT64 or address in _COMPATIBLE:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def is_public(address: IPAddress) -> bool:
    """A global unicast address that carries no non-public IPv4 address inside it."""
    if isinstance(address, ipaddress.IPv6Address) and address.sixtofour is not None:
        # A 6to4 address is as public as the IPv4 address it carries. Decided here because Python's own
        # answer for 2002::/16 differs between releases (Debian 12's patched 3.11.2 calls it private,
        # 3.11.7 global), so the same webhook URL would be accepted on one machine and refused on another.
        return is_public(address.sixtofour)
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address) and (address in _COMPATIBLE or address in _NAT64_LOCAL):
        return False  # forms with no legitimate public use
    return all(is_public(inner) for inner in embedded_ipv4(address))


def resolve_webhook_target(url: str, allowed_hosts: frozenset[str]) -> WebhookTarget:
    """The checked target of ``url`` (resolved once); ``InvalidWebhookError`` saying why not otherwise."""
    if len(url) > MAX_URL:
        raise InvalidWebhookError(url, f"longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhookError(url, "only http:// and https:// URLs with a host are accepted")
    if parts.username or parts.password:
        raise InvalidWebhookError(url, "credentials in the URL are not accepted")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidWebhookError(url, "the port is not a number in 0..65535") from None
    host = parts.hostname.lower()
    allowed = host in allowed_hosts
    if not allowed and port not in PORTS:
        raise InvalidWebhookError(
            url, f"port {port} is not 80 or 443 (list {host} in WEBHOOK_ALLOWED_HOSTS to allow it)"
        )
    addresses = _addresses(url, host, port)
    if not allowed and not all(is_public(a) for a in addresses):
        raise InvalidWebhookError(
            url,
            f"{host} is a private, loopback or link-local address (list it in WEBHOOK_ALLOWED_HOSTS to allow it)",
        )
    return WebhookTarget(url, parts.scheme, host, port, tuple(dict.fromkeys(str(a) for a in addresses)))


def check_webhook_url(url: str, allowed_hosts: frozenset[str]) -> str:
    """``url`` if the service may POST to it; ``InvalidWebhookError`` saying why not otherwise."""
    return resolve_webhook_target(url, allowed_hosts).url
