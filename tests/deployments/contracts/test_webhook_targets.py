"""Which webhook URLs the service may call: public http(s) on ports 80 and 443 only, an IPv6 address checked
for the IPv4 address it carries, a name resolved once; unless a host is allowed by name."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from deployments.contracts.errors import InvalidWebhookError
from deployments.contracts.webhook_targets import WebhookTarget, check_webhook_url, resolve_webhook_target


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1/hook", "private, loopback"),
        ("http://localhost/hook", "private, loopback"),
        ("http://[::1]/hook", "private, loopback"),
        ("http://10.1.2.3/hook", "private, loopback"),
        ("http://192.168.0.10/hook", "private, loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/hook", "private, loopback"),
        ("ftp://example.com/hook", "only http"),
        ("file:///etc/passwd", "only http"),
        ("http://user:pw@8.8.8.8/hook", "credentials"),
        ("https://" + "a" * 3000 + ".com/", "longer than"),
        ("http://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_refused(url: str, words: str) -> None:
    with pytest.raises(InvalidWebhookError, match=words) as caught:
        check_webhook_url(url, frozenset())
    assert caught.value.code == "invalid_webhook_url"


def test_a_public_address_is_accepted() -> None:
    assert check_webhook_url("https://8.8.8.8/hook", frozenset()) == "https://8.8.8.8/hook"


def test_an_allowed_host_is_accepted_even_when_private() -> None:
    assert check_webhook_url("http://127.0.0.1:9/h", frozenset({"127.0.0.1"})) == "http://127.0.0.1:9/h"
    with pytest.raises(InvalidWebhookError):
        check_webhook_url("http://127.0.0.2:9/h", frozenset({"127.0.0.1"}))


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.5",
        "64:ff9b::7f00:1",  # NAT64 (well-known prefix) of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::808:808",  # local-use NAT64: never a public receiver
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:5::1",  # 6to4 of 10.0.0.5
        "::127.0.0.1",  # IPv4-compatible
        "::8.8.8.8",  # IPv4-compatible, even of a public address: a deprecated form
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_an_ipv6_address_carrying_a_private_ipv4_is_refused(address: str) -> None:
    with pytest.raises(InvalidWebhookError, match="private, loopback"):
        check_webhook_url(f"http://[{address}]/hook", frozenset())


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "::ffff:8.8.8.8", "2002:808:808::1", "2606:4700::1111"])
def test_an_ipv6_address_carrying_a_public_ipv4_is_accepted(address: str) -> None:
    target = resolve_webhook_target(f"https://[{address}]/hook", frozenset())
    assert [ipaddress.ip_address(a) for a in target.addresses] == [ipaddress.ip_address(address)]


@pytest.mark.parametrize("url", ["http://8.8.8.8:8080/hook", "https://8.8.8.8:22/hook", "http://8.8.8.8:443/hook"])
def test_ports_other_than_80_and_443_are_refused(url: str) -> None:
    if url.endswith(":443/hook"):
        assert check_webhook_url(url, frozenset()) == url  # 443 over http is odd, but a web port
        return
    with pytest.raises(InvalidWebhookError, match=r"port \d+ is not 80 or 443"):
        check_webhook_url(url, frozenset())


def test_an_allowed_host_may_use_any_port() -> None:
    assert check_webhook_url("http://127.0.0.1:8080/h", frozenset({"127.0.0.1"})) == "http://127.0.0.1:8080/h"


def test_a_name_is_resolved_once_and_its_checked_addresses_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        asked.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.4.4", port)),
            (socket.AF_INET, 1, 6, "", ("8.8.8.8", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    target = resolve_webhook_target("https://hooks.example.com/in?x=1", frozenset())
    assert target == WebhookTarget(
        "https://hooks.example.com/in?x=1", "https", "hooks.example.com", 443, ("8.8.4.4", "8.8.8.8")
    )
    assert asked == ["hooks.example.com"]


def test_every_address_of_a_name_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        return [
            (socket.AF_INET, 1, 6, "", ("8.8.8.8", port)),
            (socket.AF_INET6, 1, 6, "", ("::ffff:127.0.0.1", port, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(InvalidWebhookError, match="private, loopback"):
        check_webhook_url("https://mixed.example.com/in", frozenset())
