"""At least once, never twice: a job survives its service being stopped mid-way (embedded broker), a
consumer replica killed mid-way and a submitter that died between recording a job and enqueueing its
items (Debian's redis-server), ending with exactly one object per item."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from bench import images
from deployments.jobs.records import Item, Job, JobStore, now_iso
from deployments.jobs.webhooks import redis_client
from deployments.storage.keys import job_input_key
from tests.integration.conftest import deployed
from tests.integration.helpers import submit_job, wait_for_job

pytestmark = pytest.mark.integration

ITEMS = 12


def job_files(seed: int) -> list[tuple[str, bytes]]:
    return [(f"p{i}.jpg", images.jpeg(640, 480, seed=seed + i)) for i in range(ITEMS)]


def wait_started(client: httpx.Client, job_id: str, done: int = 2) -> None:
    deadline = time.monotonic() + 60
    while client.get(f"/api/jobs/{job_id}").json()["done"] < done:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def assert_exactly_one_object_per_item(job: dict[str, Any], storage: Path) -> None:
    assert job["status"] == "completed" and job["done"] == ITEMS and job["failed"] == 0, job
    keys = {item["result"]["key"] for item in job["items"]}
    upscaled = sorted(p.relative_to(storage).as_posix() for p in (storage / "upscaled").iterdir())
    assert len(keys) == ITEMS and sorted(keys) == upscaled
    assert not [p for p in storage.rglob("*") if p.name.endswith(".tmp")], "partial files left behind"


def test_a_job_stopped_with_the_service_completes_after_a_restart(serve_url: str, tmp_path: Path) -> None:
    settings = {"storage_dir": str(tmp_path / "storage"), "jobs_dir": str(tmp_path / "jobs"), "device": "cpu"}
    with deployed(serve_url, **settings) as client:
        job_id = submit_job(client, job_files(seed=500)).json()["job_id"]
        wait_started(client, job_id)
    # deployed() deleted the whole application (broker, consumer, every replica) mid-job
    with deployed(serve_url, **settings) as client:
        job = wait_for_job(client, job_id, timeout_s=180)
    assert_exactly_one_object_per_item(job, tmp_path / "storage")


def test_a_consumer_killed_mid_job_loses_nothing(serve_url: str, redis_url: str, tmp_path: Path) -> None:
    settings = {
        "storage_dir": str(tmp_path / "storage"),
        "jobs_broker_url": redis_url,
        "jobs_visibility_timeout_s": 10,  # redelivery of the killed replica's items after 10 s
        "device": "cpu",
    }
    with deployed(serve_url, **settings) as client:
        job_id = submit_job(client, job_files(seed=900)).json()["job_id"]
        wait_started(client, job_id)
        (replica,) = [a for a in ray.util.list_named_actors(all_namespaces=True) if "JobsConsumer" in a["name"]]
        ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=True)
        job = wait_for_job(client, job_id, timeout_s=180)
    assert_exactly_one_object_per_item(job, tmp_path / "storage")


def test_a_job_recorded_but_never_enqueued_is_sent_from_the_outbox(
    serve_url: str, redis_url: str, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    settings = {"storage_dir": str(storage), "jobs_broker_url": redis_url, "device": "cpu"}
    with deployed(serve_url, **settings) as client:
        # What a submitter that died right after recording the job leaves: stored inputs and a record
        # on the outbox (its grace over), with no item on the queue.
        job_id, now = "outbox-test-job", now_iso()
        items = [Item(i, f"p{i}.jpg", job_input_key(job_id, i, "jpg")) for i in range(2)]
        for i, item in enumerate(items):
            (storage / item.input_key).parent.mkdir(parents=True, exist_ok=True)
            (storage / item.input_key).write_bytes(images.jpeg(320, 240, seed=700 + i))
        JobStore(redis_client(redis_url)).create(Job(job_id, 2, now, now, items=items), send_after_s=0)
        job = wait_for_job(client, job_id, timeout_s=60)
    assert job["status"] == "completed" and job["done"] == 2 and job["failed"] == 0, job
    assert all((storage / item["result"]["key"]).is_file() for item in job["items"])
    assert not (storage / "jobs" / job_id).exists()  # inputs deleted once their items ended
