"""The command line's HTTP client: a 429 or 503 is waited out as its ``Retry-After`` says (tenacity), an
older service without ``/api/limits`` gets the old defaults, and an answer that is not JSON is an
``ApiError`` that says so."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from serve_app.client import ApiError, Client
from serve_app.retry import retry_after_s
from serve_app.service_limits import DEFAULT_LIMITS, ServiceLimits

MODELS = [{"name": "vcsr-m-x2"}]


def scripted(*answers: httpx.Response) -> tuple[Client, list[float], list[str]]:
    """A client whose service answers ``answers`` in order (the last repeats), and its recorded sleeps."""
    queue, sleeps, seen = list(answers), [], []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return queue.pop(0) if len(queue) > 1 else queue[0]

    client = Client("http://service", transport=httpx.MockTransport(handle), sleep=sleeps.append)
    return client, sleeps, seen


def test_a_429_is_waited_out_for_its_retry_after_then_asked_again() -> None:
    refused = httpx.Response(429, json={"error": "rate_limited", "message": "Too many"}, headers={"Retry-After": "7"})
    client, sleeps, seen = scripted(refused, httpx.Response(200, json=MODELS))
    told: list[tuple[float, str]] = []
    client.on_wait = lambda seconds, error: told.append((seconds, str(error)))
    assert client.models() == MODELS
    assert seen == ["GET /api/models"] * 2
    assert len(sleeps) == 1 and 7 <= sleeps[0] <= 7.5  # Retry-After plus a little jitter
    assert told == [(sleeps[0], "Too many")]  # the progress view is told of the wait


def test_a_503_without_retry_after_is_retried_on_exponential_backoff() -> None:
    busy = httpx.Response(503, json={"error": "overloaded", "message": "Busy"})
    client, sleeps, _ = scripted(busy, busy, busy, httpx.Response(200, json=MODELS))
    assert client.models() == MODELS
    assert len(sleeps) == 3 and sleeps[0] <= 2 and sleeps[2] >= 4  # 1, 2, 4 s, each plus up to 1 s jitter


def test_a_wait_longer_than_the_client_allows_is_not_made() -> None:
    hour = httpx.Response(429, json={"error": "rate_limited", "message": "Too many"}, headers={"Retry-After": "3600"})
    client, sleeps, _ = scripted(hour)
    with pytest.raises(ApiError) as raised:
        client.models()
    assert raised.value.status == 429 and raised.value.retry_after == 3600 and sleeps == []


def test_other_refusals_are_not_retried() -> None:
    client, sleeps, seen = scripted(httpx.Response(422, json={"error": "invalid", "message": "No"}))
    with pytest.raises(ApiError, match="No"):
        client.models()
    assert sleeps == [] and len(seen) == 1


def test_retry_after_is_seconds_or_an_http_date() -> None:
    now = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("12") == 12.0
    assert retry_after_s("Sun, 06 Dec 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_an_html_answer_from_a_proxy_is_an_api_error_that_says_what_came() -> None:
    page = httpx.Response(502, text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                          headers={"Content-Type": "text/html"})  # fmt: skip
    client, _, _ = scripted(page)
    for call in (client.models, client.stats, client.health):
        with pytest.raises(ApiError) as raised:
            call()
        assert raised.value.status == 502
        assert "HTTP 502 with text/html, not the API's JSON" in str(raised.value) and "Bad Gateway" in str(raised.value)


def test_a_success_that_is_not_json_is_an_api_error_too() -> None:
    client, _, _ = scripted(httpx.Response(200, text="<html>hello</html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(ApiError, match="HTTP 200 with text/html"):
        client.stats()


def test_the_limits_come_from_the_service_or_the_old_defaults_from_one_without_the_route() -> None:
    body = {"max_job_images": 10, "max_job_bytes": 2_000_000, "rate_limit": "20/minute",
            "rate_limits": [{"amount": 20, "period_s": 60}]}  # fmt: skip
    client, _, _ = scripted(httpx.Response(200, json=body))
    assert client.limits() == ServiceLimits(10, 2_000_000, ((20, 60),), "20/minute")
    old, _, _ = scripted(httpx.Response(404, json={"error": "not_found", "message": "Not Found"}))
    assert old.limits() == DEFAULT_LIMITS
    assert (DEFAULT_LIMITS.max_job_images, DEFAULT_LIMITS.job_bytes) == (16, 40_000_000)


def test_polls_get_half_the_rate_limit_of_its_tightest_window() -> None:
    assert ServiceLimits(10, 1, ((20, 60),)).poll_interval_s == 6.0
    assert ServiceLimits(10, 1, ((10, 1), (1000, 3600))).poll_interval_s == 7.2
    assert ServiceLimits(10, 1).poll_interval_s == 0.0
