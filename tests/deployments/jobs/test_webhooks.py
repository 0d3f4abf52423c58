"""Webhook delivery against a real receiver and a real Redis: signed the Standard Webhooks way, retried
on 5xx/408/429 and connection errors with one webhook-id, never on other 4xx, refused for private hosts;
a record that expires during a delivery is not brought back."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from configs.settings import webhook_last_attempt_s
from deployments.jobs.delivery import retryable
from deployments.jobs.records import JobStore
from deployments.jobs.webhooks import SCHEDULE, Webhooks, retry_delay, signer
from tests.deployments.jobs.support import SECRET, deliver_all, schedule, state
from tests.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture(autouse=True)
def _no_backoff_wait(no_backoff_wait: None) -> None:
    pass


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    with webhook_receiver(getattr(request, "param", [])) as r:
        yield r


@pytest.mark.parametrize("receiver", [[500, 503]], indirect=True)
def test_a_failing_receiver_gets_one_signed_event_retried_with_one_id(
    store: JobStore, receiver: Receiver, hooks: Callable[..., Webhooks]
) -> None:
    w = hooks()
    schedule(store, w, "job-1", receiver.url)
    deliver_all(w)
    assert len(receiver.calls) == 3
    ids = {headers["webhook-id"] for headers, _ in receiver.calls}
    assert len(ids) == 1 and next(iter(ids)).startswith("msg_")
    headers, body = receiver.calls[-1]
    event = Webhook(SECRET).verify(body, headers)  # raises unless the signature is right
    assert event["type"] == "job.completed" and event["data"]["job_id"] == "job-1"
    assert state(store, "job-1")["attempts"] == 3 and state(store, "job-1")["delivered_at"]
    assert w.pending() == 0


@pytest.mark.parametrize("receiver", [[404]], indirect=True)
def test_other_client_errors_are_not_retried(
    store: JobStore, receiver: Receiver, hooks: Callable[..., Webhooks]
) -> None:
    w = hooks()
    schedule(store, w, "job-2", receiver.url, "job.failed")
    deliver_all(w)
    assert len(receiver.calls) == 1
    assert state(store, "job-2") == {"url": receiver.url, "attempts": 1, "delivered_at": None, "last_error": "HTTP 404"}


@pytest.mark.parametrize("receiver", [[500] * 10], indirect=True)
def test_attempts_stop_at_the_limit(store: JobStore, receiver: Receiver, hooks: Callable[..., Webhooks]) -> None:
    w = hooks(max_attempts=3)
    schedule(store, w, "job-3", receiver.url)
    deliver_all(w)
    assert len(receiver.calls) == 3 and state(store, "job-3")["last_error"] == "HTTP 500" and w.pending() == 0


def test_connection_errors_are_retried(store: JobStore, hooks: Callable[..., Webhooks]) -> None:
    w = hooks(max_attempts=2)
    schedule(store, w, "job-4", "http://127.0.0.1:9/nothing-listens")
    deliver_all(w)
    assert state(store, "job-4")["attempts"] == 2 and "ConnectError" in str(state(store, "job-4")["last_error"])


def test_a_private_target_is_refused_at_delivery(
    store: JobStore, receiver: Receiver, hooks: Callable[..., Webhooks]
) -> None:
    w = hooks(hosts=frozenset())
    schedule(store, w, "job-5", receiver.url)
    deliver_all(w)
    assert receiver.calls == [] and "WEBHOOK_ALLOWED_HOSTS" in str(state(store, "job-5")["last_error"])


def test_a_pending_delivery_survives_a_new_dispatcher(
    store: JobStore, receiver: Receiver, hooks: Callable[..., Webhooks]
) -> None:
    schedule(store, hooks(), "job-6", receiver.url)
    deliver_all(hooks())  # another replica, after a restart: the schedule lives in Redis
    assert len(receiver.calls) == 1


def test_backoff_starts_within_seconds_and_spans_ten_minutes() -> None:
    delays = [retry_delay(n) for n in range(1, 8)]  # the 7 waits between 8 attempts
    assert 5 <= delays[0] <= 6.5
    assert all(b > a for a, b in itertools.pairwise(delays))
    assert sum(delays) >= 600


@pytest.mark.parametrize(("status", "again"), [(500, True), (503, True), (408, True), (429, True), (400, False),
                                               (401, False), (404, False), (410, False)])  # fmt: skip
def test_which_statuses_are_retried(status: int, again: bool) -> None:
    assert retryable(status) is again


def test_a_text_secret_signs_with_its_bytes() -> None:
    body = '{"type":"job.completed"}'
    from datetime import UTC, datetime

    stamp = datetime.now(UTC)
    signature = signer(SecretStr("a-plain-text-secret-1234")).sign("msg_1", stamp, body)
    expected = Webhook(b"a-plain-text-secret-1234").sign("msg_1", stamp, body)
    assert signature == expected and signature.startswith("v1,")


def test_the_schedule_key_is_namespaced() -> None:
    assert SCHEDULE.startswith("vcs:")


def test_a_record_that_expires_during_its_delivery_is_not_brought_back(
    store: JobStore, hooks: Callable[..., Webhooks]
) -> None:
    keys = [JobStore._key("job-7", suffix) for suffix in ("", ":items", ":ended")]
    with webhook_receiver([500], on_call=lambda: store.r.delete(*keys)) as receiver:  # Redis's expiry, mid-attempt
        w = hooks()
        schedule(store, w, "job-7", receiver.url)
        deliver_all(w)
    assert len(receiver.calls) == 1  # not retried: there is no job left to tell about
    assert store.r.exists(*keys) == 0 and store.get("job-7") is None and w.pending() == 0


def test_the_schedule_fits_the_retention_that_settings_require() -> None:
    waits = [retry_delay(n) for n in range(1, 11)]  # before attempts 2..11
    assert 5115 <= sum(waits) <= webhook_last_attempt_s(11, 0) == 5125
