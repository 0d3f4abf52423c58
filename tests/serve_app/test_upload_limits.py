"""``upload`` under the service's limits, in-process: the real ingress (its ``/api/limits``, job-count and
body limits, rate limit) over fake handles whose jobs end at once. Batches are sized from what the service
publishes, and polls are spaced so that they stay within half the rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench.images import png
from configs.settings import load_settings
from deployments.contracts.values import NewJob
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.jobs_api import jobs_router
from serve_app.client import Client
from serve_app.commands import _options
from serve_app.progress import QuietView
from serve_app.upload import POLL_FIRST_S, POLL_MAX_S, Entry, PollDelay, Run, digest
from tests.fakes import FakeJobs, FakeStorage, FakeUpscaler

KEY = "in-process-key-0123456789"


class FinishingJobs(FakeJobs):
    """Jobs that have ended by the time anyone asks: every item stored in upscaled/."""

    def _submit(self, job: NewJob) -> dict[str, Any]:
        view = super()._submit(job)
        for item in view["items"]:
            key = f"upscaled/{item['filename']}"
            result = {"original_key": item["filename"], "status": "success", "folder": "upscaled", "key": key,
                      "s3_url": f"local:{key}", "quality_score": 0.0, "upscale_scale": 2,
                      "processed_at": "2026-12-06T00:00:00Z", "request_id": "r", "width": 1, "height": 1,
                      "output_width": 2, "output_height": 2,
                      "size_bytes": 1, "duplicate": False, "timings_ms": {}}  # fmt: skip
            item.update(status="success", result=result)
        view.update(status="completed", done=view["total"])
        return view


@pytest.fixture
def service() -> Iterator[tuple[TestClient, FinishingJobs]]:
    settings = load_settings(api_key=KEY, max_job_images=10, max_upload_bytes=60_000, rate_limit="20/minute")
    jobs = FinishingJobs()
    flow = Flow(FakeUpscaler(), FakeStorage(), settings)
    app = create_api(flow, settings, [jobs_router(flow, jobs, settings)], KeyRing.from_keys([KEY]))
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        yield client, jobs


def files(folder: Path, sizes: list[tuple[int, int]]) -> list[Entry]:
    entries = []
    for i, (width, height) in enumerate(sizes):
        path = folder / f"{i:02d}.png"
        path.write_bytes(png(width, height, seed=i))
        entries.append(Entry(path, digest(path), path.stat().st_size))
    return entries


def run(service: tuple[TestClient, FinishingJobs], entries: list[Entry], **args: Any) -> list[float]:
    """``upload`` as the command builds it (``commands._options``), polls' waits recorded, not slept."""
    http, _ = service
    client = Client("http://testserver", KEY)
    client.http = http
    flags = {"out": None, "model": None, "fmt": None, "batch": None, "batch_mb": None, **args}
    options = _options(type("Args", (), flags)(), client.limits())
    sleeps: list[float] = []
    job_run = Run(client, entries, options, QuietView(), sleep=sleeps.append)
    job_run.submit_all()
    job_run.poll()
    return sleeps


def test_24_files_go_in_jobs_of_the_services_max_job_images_and_all_succeed(
    service: tuple[TestClient, FinishingJobs], tmp_path: Path
) -> None:
    entries = files(tmp_path, [(16, 16)] * 24)
    sleeps = run(service, entries)
    assert [e.status for e in entries] == ["success"] * 24
    assert [len(job.files) for job in service[1].submitted] == [10, 10, 4]
    assert sleeps and min(sleeps) >= 6.0  # 20/minute: one poll per 6 s at most, half the budget


def test_jobs_stay_within_the_body_limit_with_their_multipart_framing(
    service: tuple[TestClient, FinishingJobs], tmp_path: Path
) -> None:
    entries = files(tmp_path, [(16, 16)] * 4 + [(70, 70)] * 6)  # ~1 KB each, then ~15 KB each
    run(service, entries)
    assert [e.status for e in entries] == ["success"] * 10
    size = {e.path.name: e.size for e in entries}
    sizes = [sum(size[str(f.filename)] for f in job.files) for job in service[1].submitted]
    assert len(sizes) > 1 and max(sizes) < 60_000 - 512 * 10  # every job was accepted: none over the limit


def test_batch_options_may_lower_the_services_limits_but_not_raise_them(
    service: tuple[TestClient, FinishingJobs], tmp_path: Path
) -> None:
    entries = files(tmp_path, [(16, 16)] * 7)
    run(service, entries, batch=3)
    run(service, files(tmp_path, [(16, 16)] * 12), batch=50)
    assert [len(job.files) for job in service[1].submitted] == [3, 3, 1, 10, 2]


def test_a_batch_over_a_limit_the_client_did_not_know_is_halved_until_it_fits(
    service: tuple[TestClient, FinishingJobs], tmp_path: Path
) -> None:
    http, jobs = service
    client = Client("http://testserver", KEY)
    client.http = http
    entries = files(tmp_path, [(16, 16)] * 16)
    options = _options(type("Args", (), {"out": None, "model": None, "fmt": None, "batch": None, "batch_mb": None})(),
                       client.limits())  # fmt: skip
    options.max_files = 16  # as an older client would send against MAX_JOB_IMAGES=10
    job_run = Run(client, entries, options, QuietView(), sleep=lambda s: None)
    job_run.submit_all()
    job_run.poll()
    assert [e.status for e in entries] == ["success"] * 16
    assert [len(job.files) for job in jobs.submitted] == [8, 8]


def test_polls_back_off_while_nothing_changes_and_start_again_on_progress() -> None:
    delay = PollDelay()
    waits = [delay.next(False) for _ in range(6)]
    assert waits == [1.0, 2.0, 4.0, 8.0, POLL_MAX_S, POLL_MAX_S]
    assert delay.next(True) == POLL_FIRST_S
    floored = PollDelay(floor_s=6.0)
    assert floored.next(True) == 6.0 and [floored.next(False) for _ in range(2)] == [6.0, 6.0]
