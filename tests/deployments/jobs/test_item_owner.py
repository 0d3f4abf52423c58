"""A job's results belong to the API key that submitted the job, as an upload's do (real Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import images
from configs.settings import load_settings
from deployments.contracts.values import EncodedImage, NewFile, NewJob
from deployments.jobs.deployment import JobsConsumer
from tests.deployments.jobs.test_submit import Queue
from tests.fakes import FakeStorage, FakeUpscaler


@pytest.fixture
def consumer(redis_url: str) -> Iterator[JobsConsumer]:
    settings = load_settings(jobs_broker_url=redis_url, storage_dir="unused", s3_bucket=None)
    jobs = JobsConsumer(FakeUpscaler(), FakeStorage(), settings)
    jobs.store.r.flushdb()
    jobs._adapter = Queue()  # type: ignore[attr-defined]  # what Serve's @task_consumer sets after __init__
    yield jobs
    jobs._stopping.set()


@pytest.mark.parametrize(("owner", "stored_as"), [("a1a1a1a1a1a1", "a1a1a1a1a1a1"), ("", None)])
def test_an_items_result_is_stored_for_the_jobs_owner(
    consumer: JobsConsumer, owner: str, stored_as: str | None
) -> None:
    data = images.png(32, 32)
    job = consumer._run(
        consumer.submit(
            NewJob([NewFile("a.png", EncodedImage(data, "png", "image/png", 32, 32))], None, None, None, owner)
        )
    )
    assert consumer.process_item(job["job_id"], 0) == "success"
    storage: FakeStorage = consumer.storage  # type: ignore[assignment]
    assert storage.owners == [stored_as]  # "" (no keys) stores with no owner, as an upload without keys
