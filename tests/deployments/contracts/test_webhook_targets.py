"""Which webhook URLs the service may call: public http(s) only, unless a host is allowed by name."""

from __future__ import annotations

import pytest

from deployments.contracts.errors import InvalidWebhookError
from deployments.contracts.webhook_targets import check_webhook_url


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
