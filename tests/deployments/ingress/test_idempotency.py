"""Idempotency-Key on the two routes that create something (the IETF draft's semantics): the same key
and body answer the same job or result without running twice, another body with the key is refused, a
key is its API key's own, and replicas share the keys through the broker's Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from bench import images
from configs.settings import load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.idempotency import KEPT_S, PENDING_S, RedisAnswers, idempotency
from deployments.ingress.jobs_api import jobs_router
from deployments.ingress.shared_redis import connect
from tests.fakes import FakeJobs, FakeStorage, FakeUpscaler

FIRST, SECOND = "first-key-0123456789", "second-key-0123456789"
PNG = images.png(16, 16)


def app(jobs: FakeJobs, storage: FakeStorage, shared_url: str | None = None) -> Any:
    settings = load_settings(api_keys=f"{FIRST},{SECOND}")
    flow = Flow(FakeUpscaler(), storage, settings)
    shared = connect(shared_url) if shared_url else None
    routers = [jobs_router(flow, jobs, settings, idempotency(shared))]
    return create_api(flow, settings, routers, keys=KeyRing.from_keys(settings.api_key_list), shared=shared)


@pytest.fixture
def jobs() -> FakeJobs:
    return FakeJobs()


@pytest.fixture
def storage() -> FakeStorage:
    return FakeStorage()


@pytest.fixture
def client(jobs: FakeJobs, storage: FakeStorage) -> Iterator[TestClient]:
    with TestClient(app(jobs, storage)) as c:
        yield c


def submit(client: TestClient, key: str | None, png: bytes = PNG, api_key: str = FIRST, **form: str) -> Any:
    headers = {"X-API-Key": api_key, **({"Idempotency-Key": key} if key else {})}
    return client.post("/api/jobs", files=[("images", ("a.png", png, "image/png"))], data=form, headers=headers)


def test_the_same_key_and_body_answer_the_same_job_once(client: TestClient, jobs: FakeJobs) -> None:
    first, again = submit(client, "k-1", format="webp"), submit(client, "k-1", format="webp")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert len(jobs.submitted) == 1


def test_the_same_key_and_body_answer_the_same_upload_once(client: TestClient, storage: FakeStorage) -> None:
    def upload() -> Any:
        files = {"image": ("p.png", images.png(40, 30), "image/png")}
        return client.post("/api/images/upload", files=files, headers={"X-API-Key": FIRST, "Idempotency-Key": "u-1"})

    first, again = upload(), upload()
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.json()["result"]["request_id"] == first.json()["result"]["request_id"]
    assert len(storage.owners) == 1  # stored once


@pytest.mark.parametrize("change", [{"png": images.png(17, 16)}, {"format": "jpeg"}])
def test_the_same_key_with_another_body_is_refused(client: TestClient, jobs: FakeJobs, change: dict[str, Any]) -> None:
    assert submit(client, "k-2").status_code == 202
    refused = submit(client, "k-2", **change)
    assert (refused.status_code, refused.json()["error"]) == (422, "idempotency_key_reused")
    assert len(jobs.submitted) == 1


def test_without_a_key_every_post_makes_a_job(client: TestClient, jobs: FakeJobs) -> None:
    first, second = submit(client, None), submit(client, None)
    assert first.json()["job_id"] != second.json()["job_id"] and len(jobs.submitted) == 2
    assert "idempotent-replayed" not in second.headers


def test_a_key_belongs_to_its_api_key(client: TestClient, jobs: FakeJobs) -> None:
    mine, theirs = submit(client, "shared", api_key=FIRST), submit(client, "shared", api_key=SECOND)
    assert mine.status_code == theirs.status_code == 202 and mine.json()["job_id"] != theirs.json()["job_id"]
    assert len(jobs.submitted) == 2


def test_a_refused_request_keeps_nothing_so_a_retry_runs(client: TestClient, jobs: FakeJobs) -> None:
    jobs.up = False
    assert submit(client, "k-3").status_code == 503
    jobs.up = True
    retried = submit(client, "k-3")
    assert retried.status_code == 202 and "idempotent-replayed" not in retried.headers and len(jobs.submitted) == 1


def test_a_quoted_key_is_the_same_key(client: TestClient, jobs: FakeJobs) -> None:
    submit(client, "k-4")
    assert submit(client, '"k-4"').headers["idempotent-replayed"] == "true" and len(jobs.submitted) == 1


def test_a_key_that_is_not_printable_ascii_is_refused(client: TestClient) -> None:
    response = submit(client, "x" * 256)
    assert (response.status_code, response.json()["error"]) == (422, "invalid_parameter")


def test_replicas_share_keys_through_redis_and_a_running_request_is_a_409(redis_url: str) -> None:
    jobs, storage = FakeJobs(), FakeStorage()
    with TestClient(app(jobs, storage, redis_url)) as one, TestClient(app(jobs, storage, redis_url)) as two:
        first, again = submit(one, "r-1"), submit(two, "r-1")
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        assert len(jobs.submitted) == 1
        assert submit(two, "r-1", format="png").json()["error"] == "idempotency_key_reused"
        db = redis.Redis.from_url(redis_url)
        (kept,) = db.keys("visioncloud:idempotency:*")  # one key: scoped by API key id, route and key digest
        assert KEPT_S - 5 < db.ttl(kept) <= KEPT_S
        # While the first request with a key still runs (on any replica), its claim holds the key: a
        # second one with the same body is told to come back, and nothing runs twice.
        fingerprint = json.loads(db.get(kept))["fingerprint"]
        db.set(kept, json.dumps({"fingerprint": fingerprint, "status": None}), ex=PENDING_S)
        busy = submit(one, "r-1")
        assert (busy.status_code, busy.json()["error"]) == (409, "idempotency_key_in_flight")
        assert busy.headers["retry-after"] == "1" and len(jobs.submitted) == 1


def test_only_one_of_two_replicas_claims_a_key(redis_url: str) -> None:
    async def race() -> list[Any]:
        one, two = RedisAnswers(connect(redis_url)), RedisAnswers(connect(redis_url))
        return list(await asyncio.gather(one.claim("visioncloud:idempotency:t:race", "fp"),
                                         two.claim("visioncloud:idempotency:t:race", "fp")))  # fmt: skip

    outcomes = asyncio.run(race())
    assert outcomes.count(None) == 1  # one claimed it; the other sees its pending claim
    (held,) = [o for o in outcomes if o is not None]
    assert held.fingerprint == "fp" and held.status is None
