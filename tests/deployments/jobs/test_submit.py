"""Submitting a job on a real Redis: all of its inputs are stored or none, a job that cannot be recorded
leaves nothing behind, and a recorded job whose items could not be queued is accepted and later sent
from the outbox."""

from __future__ import annotations

from typing import Any

import pytest

from deployments.contracts.errors import JobsUnavailableError, StorageUnreachableError
from deployments.contracts.values import EncodedImage, NewFile, NewJob
from deployments.jobs.deployment import JobsConsumer
from deployments.jobs.records import UNSENT
from tests.deployments.jobs.support import Queue
from tests.fakes import FakeStorage, Method


def new_job(count: int = 3) -> NewJob:
    files = [NewFile(f"p{i}.png", EncodedImage(b"png %d" % i, "png", "image/png", 8, 8)) for i in range(count)]
    return NewJob(files, None, None, None, "")


def test_an_input_that_cannot_be_stored_refuses_the_job_and_leaves_no_input(consumer: JobsConsumer) -> None:
    storage: FakeStorage = consumer.storage  # type: ignore[assignment]
    stored = storage.put_job_input.fn

    def refuse_second(job_id: str, index: int, image: EncodedImage) -> Any:
        if index == 1:
            raise StorageUnreachableError("the bucket is down")
        return stored(job_id, index, image)

    storage.put_job_input = Method(refuse_second)
    with pytest.raises(StorageUnreachableError):
        consumer._run(consumer.submit(new_job()))
    assert storage.objects == {} and consumer.store.r.zcard("vcs:jobs") == 0


def test_a_job_that_cannot_be_recorded_leaves_no_input(consumer: JobsConsumer, monkeypatch: pytest.MonkeyPatch) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(consumer.store, "create", broker_down)
    with pytest.raises(JobsUnavailableError):
        consumer._run(consumer.submit(new_job()))
    assert consumer.storage.objects == {}  # type: ignore[attr-defined]


def test_a_recorded_job_is_accepted_when_its_items_cannot_be_queued_and_sent_later(consumer: JobsConsumer) -> None:
    queue: Queue = consumer._adapter  # type: ignore[attr-defined]
    queue.up = False
    job = consumer._run(consumer.submit(new_job()))
    assert job["status"] == "queued" and consumer.store.r.zscore(UNSENT, job["job_id"]) is not None
    queue.up = True
    consumer.store.r.zadd(UNSENT, {job["job_id"]: 0})  # its grace is over
    consumer._send_unsent()
    assert queue.sent == [(job["job_id"], i) for i in range(3)]
    assert consumer.store.r.zcard(UNSENT) == 0


def test_a_queued_job_leaves_the_outbox_at_once(consumer: JobsConsumer) -> None:
    job = consumer._run(consumer.submit(new_job(2)))
    queue: Queue = consumer._adapter  # type: ignore[attr-defined]
    assert queue.sent == [(job["job_id"], 0), (job["job_id"], 1)] and consumer.store.r.zcard(UNSENT) == 0
