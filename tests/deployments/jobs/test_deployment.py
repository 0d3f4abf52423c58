"""The jobs consumer on a real Redis, with its outbox sweeper and webhook poller running: a receiver that
answers slowly delays no other job's webhook and not the outbox; a job that failed or was cancelled
sends a signed event of that type with the job in it; cancelling a finished job changes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from standardwebhooks.webhooks import Webhook

from bench import images
from deployments.contracts.values import EncodedImage, NewFile, NewJob
from deployments.jobs.deployment import JobsConsumer
from deployments.jobs.records import Item, Job, now_iso
from tests.deployments.jobs.support import SECRET, Queue, schedule
from tests.webhook_receiver import Receiver, webhook_receiver

OWNER = "key-1"


def wait_until(done: Callable[[], object], timeout_s: float) -> float:
    """Seconds until ``done()`` was true; fails past ``timeout_s``."""
    started = time.monotonic()
    while not done():
        assert time.monotonic() - started < timeout_s, f"not within {timeout_s} s"
        time.sleep(0.02)
    return time.monotonic() - started


def submit(consumer: JobsConsumer, files: list[tuple[str, bytes]], webhook_url: str) -> str:
    new = [NewFile(name, EncodedImage(data, "png", "image/png", 16, 16)) for name, data in files]
    job: dict[str, Any] = consumer._run(consumer.submit(NewJob(new, None, None, webhook_url, OWNER)))
    return str(job["job_id"])


def event_received(receiver: Receiver) -> dict[str, Any]:
    """The one event ``receiver`` got, its signature checked (raises unless right)."""
    wait_until(lambda: receiver.calls, 10)
    assert len(receiver.calls) == 1
    headers, body = receiver.calls[0]
    assert headers["webhook-id"].startswith("msg_")
    event: dict[str, Any] = Webhook(SECRET).verify(body, headers)
    return event


def record(consumer: JobsConsumer) -> tuple[dict[str, str], ...]:
    """Everything Redis holds about the consumer's jobs, to compare before and after."""
    r = consumer.store.r
    keys = sorted(r.keys("vcs:job:*"))
    return tuple(r.hgetall(k) if r.type(k) == "hash" else {m: "" for m in r.smembers(k)} for k in keys)


def test_a_receiver_that_trickles_delays_neither_another_jobs_webhook_nor_the_outbox(consumer: JobsConsumer) -> None:
    store, queue = consumer.store, consumer._adapter  # type: ignore[attr-defined]
    with webhook_receiver(trickle="head") as slow, webhook_receiver() as prompt:  # slow: 19 s, deadline 5 s
        schedule(store, consumer.webhooks, "job-slow", slow.url)
        wait_until(lambda: slow.calls, 5)  # its attempt is under way, holding its receiver's answer
        items = [Item(0, "a.png", "jobs/job-left/0000.png")]
        store.create(Job("job-left", 1, now_iso(), now_iso(), items=items), send_after_s=0)  # left on the outbox
        schedule(store, consumer.webhooks, "job-prompt", prompt.url)
        webhook_s = wait_until(lambda: prompt.calls, 10)
        outbox_s = wait_until(lambda: ("job-left", 0) in queue.sent, 10)
    # Both within the poller's and the sweeper's half-second period, well under the slow attempt's 5 s.
    assert webhook_s < 1.5 and outbox_s < 1.5, (webhook_s, outbox_s)


def test_a_job_whose_every_item_failed_sends_a_signed_job_failed_event(consumer: JobsConsumer) -> None:
    with webhook_receiver() as receiver:
        job_id = submit(consumer, [("a.png", b"not an image"), ("b.png", b"nor this")], receiver.url)
        assert [consumer.process_item(job_id, i) for i in range(2)] == ["error", "error"]
        event = event_received(receiver)
    assert event["type"] == "job.failed"
    data = event["data"]
    assert (data["job_id"], data["status"], data["total"], data["done"], data["failed"]) == (job_id, "failed", 2, 2, 2)
    assert [(i["status"], i["error"]["code"]) for i in data["items"]] == [("error", "not_an_image")] * 2
    assert data["webhook"] == {"url": receiver.url, "attempts": 0, "delivered_at": None, "last_error": None}
    job = consumer.store.get(job_id)
    assert job is not None and job.webhook is not None and job.webhook["delivered_at"]


def test_a_cancelled_job_sends_a_signed_job_cancelled_event(consumer: JobsConsumer) -> None:
    with webhook_receiver() as receiver:
        job_id = submit(consumer, [("a.png", images.png(16, 16)), ("b.png", images.png(16, 16, seed=2))], receiver.url)
        answer = consumer._run(consumer.cancel(job_id, OWNER))
        event = event_received(receiver)
    assert answer is not None and answer["status"] == "cancelled"
    assert event["type"] == "job.cancelled"
    data = event["data"]
    assert (data["job_id"], data["status"], data["done"], data["failed"]) == (job_id, "cancelled", 2, 0)
    assert [i["status"] for i in data["items"]] == ["cancelled", "cancelled"]
    assert consumer.storage.objects == {}  # type: ignore[attr-defined]  # the inputs are gone
    assert queue_items(consumer._adapter, job_id) == [0, 1]  # type: ignore[attr-defined]


def queue_items(queue: Queue, job_id: str) -> list[int]:
    return [index for sent_id, index in queue.sent if sent_id == job_id]


def test_cancelling_a_finished_job_answers_it_and_changes_nothing(consumer: JobsConsumer) -> None:
    with webhook_receiver() as receiver:
        job_id = submit(consumer, [("a.png", images.png(16, 16))], receiver.url)
        assert consumer.process_item(job_id, 0) == "success"
        event_received(receiver)
        wait_until(lambda: consumer.webhooks.pending() == 0, 5)
        before, shown = record(consumer), consumer._run(consumer.get(job_id, OWNER))
        answer = consumer._run(consumer.cancel(job_id, OWNER))
        assert answer == shown and answer is not None and answer["status"] == "completed"
        assert record(consumer) == before  # no cancel flag, no new event, no item touched
        assert consumer.webhooks.pending() == 0 and len(receiver.calls) == 1
    assert consumer._run(consumer.cancel(job_id, "another-key")) is None  # and another key's answer is none
