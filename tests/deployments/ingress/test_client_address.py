"""The client's address: the peer, unless the peer is a trusted proxy; then the X-Forwarded-For entry
nearest to it that is not itself a trusted proxy."""

from __future__ import annotations

import ipaddress
from typing import Any

from configs.settings import load_settings
from deployments.ingress.client_address import ClientAddresses


def scope(peer: str, forwarded: str | None = None) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"type": "http", "client": (peer, 1), "headers": headers}


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert ClientAddresses().address(scope("203.0.113.5", "1.2.3.4")) == "203.0.113.5"


def test_forwarded_for_is_believed_only_from_a_trusted_peer() -> None:
    clients = ClientAddresses(load_settings(trusted_proxies="10.0.0.0/8, 2001:db8::1").trusted_proxy_networks)
    assert clients.address(scope("10.1.2.3", "198.51.100.7")) == "198.51.100.7"
    assert clients.address(scope("203.0.113.5", "198.51.100.7")) == "203.0.113.5"  # a client's own header
    # The client wrote a fake first entry; the proxies appended the real one and their own hops.
    assert clients.address(scope("2001:db8::1", "6.6.6.6, 198.51.100.7, 10.9.9.9")) == "198.51.100.7"
    assert clients.address(scope("10.1.2.3")) == "10.1.2.3"  # no header: the proxy itself


def test_networks_parse_single_addresses_and_cidrs() -> None:
    networks = load_settings(trusted_proxies="192.168.1.7,fd00::/8").trusted_proxy_networks
    assert networks == (ipaddress.ip_network("192.168.1.7/32"), ipaddress.ip_network("fd00::/8"))
