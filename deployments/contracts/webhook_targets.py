"""Which webhook URLs the service may call (SSRF guard), shared by submission and delivery.

Only http(s) URLs whose host resolves to public addresses; private, loopback, link-local, multicast,
reserved and unspecified addresses are refused unless the host is listed in ``WEBHOOK_ALLOWED_HOSTS``.
Delivery checks again, so a name that later resolves to a private address (DNS rebinding) is refused.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from deployments.contracts.errors import InvalidWebhookError

MAX_URL = 2048


def _addresses(url: str, host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidWebhookError(url, f"the host does not resolve ({exc})") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_webhook_url(url: str, allowed_hosts: frozenset[str]) -> str:
    """``url`` if the service may POST to it; ``InvalidWebhookError`` saying why not otherwise."""
    if len(url) > MAX_URL:
        raise InvalidWebhookError(url, f"longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhookError(url, "only http:// and https:// URLs with a host are accepted")
    if parts.username or parts.password:
        raise InvalidWebhookError(url, "credentials in the URL are not accepted")
    host = parts.hostname.lower()
    if host in allowed_hosts:
        return url
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for address in _addresses(url, host, port):
        if not address.is_global or address.is_multicast:
            raise InvalidWebhookError(
                url,
                f"{host} is a private, loopback or link-local address (list it in WEBHOOK_ALLOWED_HOSTS to allow it)",
            )
    return url
