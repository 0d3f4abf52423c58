"""Shared by the jobs tests: a job store on a real Redis, and webhooks closed after each test."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from configs.settings import load_settings
from deployments.jobs import webhooks
from deployments.jobs.deployment import JobsConsumer
from deployments.jobs.records import JobStore
from deployments.jobs.webhooks import Webhooks, redis_client
from tests.deployments.jobs.support import LOCAL, SECRET, Queue
from tests.fakes import FakeStorage, FakeUpscaler


@pytest.fixture
def store(redis_url: str) -> JobStore:
    s = JobStore(redis_client(redis_url))
    s.r.flushdb()
    return s


@pytest.fixture
def no_backoff_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "retry_delay", lambda attempts: 0.0)


@pytest.fixture
def hooks(store: JobStore) -> Iterator[Callable[..., Webhooks]]:
    """Webhooks on ``store`` (closed after the test), with what a test changes."""
    made: list[Webhooks] = []

    def make(
        max_attempts: int = 8,
        hosts: frozenset[str] = LOCAL,
        timeout_s: float = 5.0,
        verify: ssl.SSLContext | bool = True,
    ) -> Webhooks:
        made.append(Webhooks(store, SecretStr(SECRET), max_attempts, timeout_s, hosts, verify=verify))
        return made[-1]

    yield make
    for w in made:
        w.close()


@pytest.fixture
def consumer(redis_url: str) -> Iterator[JobsConsumer]:
    """The jobs consumer on a real Redis with fake upscaler and storage, its sweeper and webhook poller
    running, Serve's broker adapter replaced by a ``Queue``; webhooks may reach 127.0.0.1."""
    settings = load_settings(
        jobs_broker_url=redis_url,
        storage_dir="unused",
        s3_bucket=None,
        webhook_secret=SECRET,
        webhook_allowed_hosts="127.0.0.1",
        webhook_timeout_s=5,
    )
    jobs = JobsConsumer(FakeUpscaler(), FakeStorage(), settings)
    jobs.store.r.flushdb()
    jobs._adapter = Queue()  # type: ignore[attr-defined]  # what Serve's @task_consumer sets after __init__
    yield jobs
    jobs._stopping.set()
    jobs.webhooks.close()
