"""Batch jobs end to end on a real Ray Serve with the embedded broker: the same folders and objects as
the upload route, refusals that create nothing, cancel, and a signed webhook retried past failures."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from bench import images
from tests.integration.conftest import deployed
from tests.integration.helpers import stored_files, submit_job, upload, wait_for_job
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.integration


def inputs_left(storage: Path, job_id: str, timeout_s: float = 10.0) -> list[str]:
    """The job's inputs still stored, once they stop disappearing (an item deletes its input just
    after it ends, so the last one may trail the job's final status by a moment)."""
    folder, deadline = storage / "jobs" / job_id, time.monotonic() + timeout_s
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


SECRET = "whsec_" + base64.b64encode(b"jobs-test-secret-0123456789abcdef").decode()
MAX_IMAGES = 12


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
def client(serve_url: str, storage: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = {
        "storage_dir": str(storage),
        "jobs_dir": str(tmp_path_factory.mktemp("jobs")),
        "device": "cpu",
        "max_job_images": MAX_IMAGES,
        "webhook_secret": SECRET,
        "webhook_allowed_hosts": "127.0.0.1",
    }
    with deployed(serve_url, **settings) as c:
        yield c


def test_a_job_stores_what_the_upload_route_stores(client: httpx.Client, storage: Path) -> None:
    files = [
        ("small.png", images.png(96, 64, seed=1)),
        ("hd.jpg", images.jpeg(1280, 720, seed=2)),
        ("uhd.jpg", images.jpeg(3840, 2160, seed=3)),
        ("tiny.jpg", images.jpeg(200, 150, seed=4)),
    ]
    response = submit_job(client, files)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["success"] is True and body["status"] == "queued" and body["total"] == 4
    assert response.headers["location"] == f"/api/jobs/{body['job_id']}"
    job = wait_for_job(client, body["job_id"])
    assert job["status"] == "completed" and (job["done"], job["failed"]) == (4, 0), job
    folders = [item["result"]["folder"] for item in job["items"]]
    assert folders == ["upscaled", "upscaled", "good_quality", "upscaled"]
    assert [item["filename"] for item in job["items"]] == [name for name, _ in files]
    for item in job["items"]:
        assert item["status"] == "success" and item["error"] is None
        assert (storage / item["result"]["key"]).is_file()
    assert (storage / job["items"][2]["result"]["key"]).read_bytes() == files[2][1]  # stored as uploaded
    assert inputs_left(storage, body["job_id"]) == []  # each input went once its item ended
    again = upload(client, files[1][1], "hd.jpg").json()["result"]
    assert again["key"] == job["items"][1]["result"]["key"] and again["duplicate"] is True


def test_a_job_with_a_bad_file_is_refused_whole(client: httpx.Client, storage: Path) -> None:
    before = stored_files(storage)
    listed = len(client.get("/api/jobs", params={"limit": 100}).json()["jobs"])
    response = submit_job(client, [("fine.png", images.png(32, 32)), ("notes.txt", b"not an image at all")])
    assert response.status_code == 415, response.text
    body = response.json()
    assert body["success"] is False and body["error"] == "not_an_image"
    assert body["files"] == [
        {"index": 1, "filename": "notes.txt", "error": "not_an_image", "message": body["files"][0]["message"]}
    ]
    assert stored_files(storage) == before
    assert len(client.get("/api/jobs", params={"limit": 100}).json()["jobs"]) == listed


def test_too_many_images_are_refused(client: httpx.Client) -> None:
    response = submit_job(client, [(f"{i}.png", images.png(8, 8, seed=i)) for i in range(MAX_IMAGES + 1)])
    assert response.status_code == 413 and response.json()["error"] == "too_many_images"


def test_a_job_needs_images(client: httpx.Client) -> None:
    response = client.post("/api/jobs", data={"model": "vcsr-m-x2"})
    assert response.status_code == 422 and response.json()["error"] == "missing_field"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_jobs_are_404(client: httpx.Client, method: str) -> None:
    response = client.request(method, "/api/jobs/no-such-job-id")
    assert response.status_code == 404 and response.json()["error"] == "job_not_found"


@pytest.mark.parametrize("url", ["http://10.0.0.5/hook", "http://169.254.169.254/latest", "ftp://example.com/"])
def test_a_private_or_odd_webhook_is_refused(client: httpx.Client, url: str) -> None:
    response = submit_job(client, [("a.png", images.png(16, 16))], webhook_url=url)
    assert response.status_code == 422 and response.json()["error"] == "invalid_webhook_url"


def test_delete_cancels_what_has_not_started(client: httpx.Client, storage: Path) -> None:
    files = [(f"c{i}.jpg", images.jpeg(480, 360, seed=100 + i)) for i in range(MAX_IMAGES)]
    job_id = submit_job(client, files).json()["job_id"]
    response = client.delete(f"/api/jobs/{job_id}")
    assert response.status_code == 200 and response.json()["job_id"] == job_id
    job = wait_for_job(client, job_id)
    assert job["status"] == "cancelled", job
    statuses = [item["status"] for item in job["items"]]
    assert "pending" not in statuses and statuses.count("cancelled") >= 1
    for item in job["items"]:
        stored = item["result"] is not None and (storage / item["result"]["key"]).is_file()
        assert stored == (item["status"] == "success")
    assert inputs_left(storage, job_id) == []  # cancelled items' inputs too


def test_a_webhook_failing_twice_gets_one_signed_event(client: httpx.Client) -> None:
    with webhook_receiver([500, 500]) as receiver:
        response = submit_job(client, [("hook.png", images.png(40, 30, seed=7))], webhook_url=receiver.url)
        job_id = response.json()["job_id"]
        assert wait_for_job(client, job_id)["status"] == "completed"
        deadline = time.monotonic() + 40  # attempts after ~5 s and ~10 s more of backoff
        while not (job := client.get(f"/api/jobs/{job_id}").json())["webhook"]["delivered_at"]:
            assert time.monotonic() < deadline, job["webhook"]
            time.sleep(0.25)
    assert len(receiver.calls) == 3 and job["webhook"]["attempts"] == 3 and job["webhook"]["url"] == receiver.url
    assert len({headers["webhook-id"] for headers, _ in receiver.calls}) == 1
    headers, body = receiver.calls[-1]
    event = Webhook(SECRET).verify(body, headers)  # raises unless signed with WEBHOOK_SECRET
    assert event["type"] == "job.completed" and event["data"]["job_id"] == job_id
    assert event["data"]["items"][0]["result"]["folder"] == "upscaled"
