"""Job records on a real Redis: transitions are compare-and-set, counts never double, a job ends once."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import pytest

from deployments.contracts.jobs import ItemStatus, JobStatus
from deployments.jobs.records import UNSENT, Item, Job, JobStore, final_status, now_iso
from deployments.jobs.webhooks import redis_client


@pytest.fixture
def store(redis_url: str) -> JobStore:
    s = JobStore(redis_client(redis_url))
    s.r.flushdb()
    return s


def new_job(job_id: str = "job-aaaaaaaa", total: int = 3, owner: str = "") -> Job:
    now = now_iso()
    items = [Item(i, f"f{i}.png", f"jobs/{job_id}/{i:04d}.png") for i in range(total)]
    return Job(job_id, total, now, now, "vcsr-m-x2", "png", None, owner, items=items)


def test_a_new_job_is_queued_with_every_item_pending(store: JobStore) -> None:
    store.create(new_job())
    job = store.get("job-aaaaaaaa")
    assert job is not None and job.status == "queued" and (job.done, job.failed) == (0, 0)
    assert [i.status for i in job.items] == ["pending"] * 3
    assert job.view()["items"][0] == {
        "index": 0,
        "filename": "f0.png",
        "status": "pending",
        "result": None,
        "error": None,
    }


def test_an_unknown_job_is_none(store: JobStore) -> None:
    assert store.get("no-such-job") is None


def test_an_ended_item_never_changes_again(store: JobStore) -> None:
    store.create(new_job())
    item = Item(0, "f0.png", "k", status="running")
    assert store.move("job-aaaaaaaa", item, ("pending",))
    item.status, item.result = "success", {"key": "upscaled/x.png"}
    assert store.move("job-aaaaaaaa", item, ("running",))
    redelivered = Item(0, "f0.png", "k", status="running")
    assert not store.move("job-aaaaaaaa", redelivered, ("pending", "running"))
    job = store.get("job-aaaaaaaa")
    assert job is not None and job.items[0].status == "success" and job.done == 1 and job.status == "running"


def test_done_is_counted_once_per_item(store: JobStore) -> None:
    store.create(new_job(total=2))
    for _ in range(3):
        store.move("job-aaaaaaaa", Item(0, "f0.png", "k", status="error"), ("pending", "running", "error"))
    assert not store.all_ended("job-aaaaaaaa", 2)
    store.move("job-aaaaaaaa", Item(1, "f1.png", "k", status="success"), ("pending",))
    assert store.all_ended("job-aaaaaaaa", 2)


def test_a_job_is_finalised_once(store: JobStore) -> None:
    store.create(new_job())
    assert store.finalize("job-aaaaaaaa", JobStatus.COMPLETED)
    assert not store.finalize("job-aaaaaaaa", JobStatus.FAILED)
    job = store.get("job-aaaaaaaa")
    assert job is not None and job.status is JobStatus.COMPLETED  # read back as the enum, not a string


@pytest.mark.parametrize(
    ("statuses", "cancelled", "expected"),
    [
        (["success", "error"], False, "completed"),
        (["error", "error"], False, "failed"),
        (["success", "cancelled"], True, "cancelled"),
    ],
)
def test_final_status(statuses: list[str], cancelled: bool, expected: str) -> None:
    job = new_job(total=2)
    job.cancel_requested = cancelled
    for item, status in zip(job.items, statuses, strict=True):
        item.status = status
    assert final_status(job) == expected


def test_listing_is_newest_first_in_pages_and_per_owner(store: JobStore) -> None:
    for n in range(5):
        store.create(new_job(f"job-{n:08d}", total=1, owner="k1" if n % 2 else "k2"))
    first, cursor = store.list(2)
    assert [j.job_id for j in first] == ["job-00000004", "job-00000003"] and cursor is not None
    second, cursor = store.list(2, cursor)
    assert [j.job_id for j in second] == ["job-00000002", "job-00000001"]
    third, cursor = store.list(2, cursor)
    assert [j.job_id for j in third] == ["job-00000000"] and cursor is None
    mine, _ = store.list(10, owner="k1")
    assert [j.job_id for j in mine] == ["job-00000003", "job-00000001"]


def test_an_owner_behind_a_full_window_of_other_jobs_pages_on(store: JobStore) -> None:
    store.create(new_job("job-mine0000", total=1, owner="k1"))
    for n in range(20):  # a page of 1 scans 1 × 4 + 8 = 12 ids: all of them someone else's
        store.create(new_job(f"job-{n:08d}", total=1, owner="k2"))
    jobs, cursor = store.list(1, owner="k1")
    assert jobs == [] and cursor is not None
    while not jobs and cursor is not None:
        jobs, cursor = store.list(1, cursor, owner="k1")
    assert [j.job_id for j in jobs] == ["job-mine0000"]


def test_a_finished_job_expires_after_the_retention_and_leaves_the_listing(store: JobStore) -> None:
    store.retention_s = 3600
    store.create(new_job("job-kept0000", total=1))
    store.create(new_job(total=1))
    store.move("job-aaaaaaaa", Item(0, "f0.png", "k", status="success"), ("pending",))
    assert store.finalize("job-aaaaaaaa", JobStatus.COMPLETED)
    keys = [JobStore._key("job-aaaaaaaa", suffix) for suffix in ("", ":items", ":ended")]
    assert all(3500 < store.r.ttl(key) <= 3600 for key in keys)
    assert store.r.ttl(JobStore._key("job-kept0000")) == -1  # unfinished: kept
    store.r.delete(*keys)  # what Redis does when the retention has passed
    jobs, _ = store.list(10)
    assert [j.job_id for j in jobs] == ["job-kept0000"] and store.get("job-aaaaaaaa") is None
    assert store.r.zrange("vcs:jobs", 0, -1) == ["job-kept0000"]  # the expired id left the index


def test_a_recorded_job_waits_on_the_outbox_until_its_items_are_sent(store: JobStore) -> None:
    store.create(new_job("job-sent0000"))
    store.create(new_job("job-lost0000"), send_after_s=0)  # its submitter died before enqueueing
    store.create(new_job("job-late0000"))  # still within the grace: its submitter is enqueueing
    store.sent("job-sent0000")
    assert set(store.r.zrange(UNSENT, 0, -1)) == {"job-late0000", "job-lost0000"}
    assert store.claim(UNSENT, lease_s=60) == ["job-lost0000"]
    assert store.claim(UNSENT, lease_s=60) == []  # leased: a second replica does not take it too
    assert store.r.zscore(UNSENT, "job-lost0000") > time.time() + 50  # due again if the taker dies


def test_an_outbox_lease_ends_and_the_job_is_due_again(store: JobStore) -> None:
    store.create(new_job("job-lost0000"), send_after_s=0)
    assert store.claim(UNSENT, lease_s=0.05) == ["job-lost0000"]
    time.sleep(0.1)
    assert store.claim(UNSENT, lease_s=60) == ["job-lost0000"]
    store.sent("job-lost0000")
    assert store.r.zcard(UNSENT) == 0


def test_an_update_writes_only_while_the_record_exists_and_keeps_its_expiry(store: JobStore) -> None:
    store.retention_s = 3600
    store.create(new_job(total=1))
    store.move("job-aaaaaaaa", Item(0, "f0.png", "k", status="success"), ("pending",))
    store.finalize("job-aaaaaaaa", "completed")
    assert store.update("job-aaaaaaaa", {"webhook": "{}"}, "vcs:webhooks", 123.0)
    assert store.r.hget(JobStore._key("job-aaaaaaaa"), "webhook") == "{}"
    assert store.r.zscore("vcs:webhooks", "job-aaaaaaaa") == 123.0
    assert 3500 < store.r.ttl(JobStore._key("job-aaaaaaaa")) <= 3600  # still expires
    assert store.update("job-aaaaaaaa", {"webhook": "{}"}, "vcs:webhooks", None)  # None: off the schedule
    assert store.r.zscore("vcs:webhooks", "job-aaaaaaaa") is None

    store.r.zadd("vcs:webhooks", {"job-gone0000": 1})
    assert not store.update("job-gone0000", {"webhook": "{}"}, "vcs:webhooks", 456.0)
    assert store.r.exists(JobStore._key("job-gone0000")) == 0  # no hash of one field
    assert store.r.zscore("vcs:webhooks", "job-gone0000") is None  # and nothing left to deliver


def test_an_item_read_back_from_its_json_has_a_typed_status() -> None:
    stored = json.dumps(asdict(Item(0, "a.png", "jobs/j/0.png", ItemStatus.SUCCESS)))
    item = Item(**json.loads(stored))
    assert item.status is ItemStatus.SUCCESS and json.loads(stored)["status"] == "success"
    job = Job("j", 1, now_iso(), now_iso(), items=[item])
    assert job.view()["items"][0]["status"] is ItemStatus.SUCCESS and job.done == 1
    assert final_status(job) is JobStatus.COMPLETED
