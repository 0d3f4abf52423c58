"""The drainer empties the spool into the bucket: in order, each entry once however many replicas drain
the folder, an entry the bucket refuses for good set aside instead of holding back the rest, and a
thread that cannot die unnoticed."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from deployments.contracts.errors import StorageUnreachableError
from deployments.storage.drain import BucketState, Drainer
from deployments.storage.s3 import S3Backend
from deployments.storage.spool import DrainPass, Spool


def refusing(client: Any, refused_key: str, code: str, status: int) -> None:
    """Make ``client`` answer ``code``/``status`` to a write of ``refused_key`` (moto accepts every write)."""
    put = client.put_object

    def put_object(**kwargs: Any) -> Any:
        if kwargs["Key"] == refused_key:
            error = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
            raise ClientError(error, "PutObject")
        return put(**kwargs)

    client.put_object = put_object


@pytest.fixture
def s3() -> Any:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="uploads")
        yield S3Backend("uploads", "us-east-1", max_attempts=1)


def spooled(folder: Path, keys: list[str]) -> Spool:
    spool = Spool(folder, 1 << 20)
    for key in keys:
        spool.add(key, key.encode(), "image/png", {})
    return spool


@pytest.mark.parametrize(("code", "status"), [("AccessDenied", 403), ("NoSuchBucket", 404), ("InvalidBucketName", 400)])
def test_an_entry_the_bucket_refuses_for_good_goes_to_dead_letters_and_the_rest_is_delivered(
    s3: S3Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture, code: str, status: int
) -> None:
    keys = ["upscaled/a.png", "upscaled/refused.png", "upscaled/c.png"]
    spool, state, reports = spooled(tmp_path, keys), BucketState(), list[DrainPass]()
    refusing(s3.client, "upscaled/refused.png", code, status)
    state.mark_down()  # the outage that filled the spool
    drainer = Drainer(spool, s3, state, reports.append)
    with caplog.at_level(logging.ERROR, logger="ray.serve"):
        drainer.pass_once(1.0)
    assert reports == [DrainPass(delivered=2, dead=["upscaled/refused.png"])]
    assert s3.get("upscaled/a.png") == b"upscaled/a.png" and s3.get("upscaled/c.png") == b"upscaled/c.png"
    assert not spool.entries() and len(list((tmp_path / "dead").iterdir())) == 1
    assert not state.down and "'upscaled/refused.png'" in caplog.text


@pytest.mark.parametrize(
    ("code", "status"), [("SlowDown", 503), ("TooManyRequests", 429), ("RequestTimeout", 400), ("InternalError", 500)]
)
def test_a_refusal_that_means_later_keeps_the_entry_and_every_later_one(
    s3: S3Backend, tmp_path: Path, code: str, status: int
) -> None:
    keys = ["upscaled/a.png", "upscaled/later.png", "upscaled/c.png"]
    spool, state, reports = spooled(tmp_path, keys), BucketState(), list[DrainPass]()
    refusing(s3.client, "upscaled/later.png", code, status)
    Drainer(spool, s3, state, reports.append).pass_once(1.0)
    assert reports == [DrainPass(delivered=1)] and state.down
    assert len(spool.entries()) == 2 and not list((tmp_path / "dead").iterdir())


class RecordingBucket:
    """Counts every write per key; ``hold`` makes the first write wait until released."""

    name = "s3"

    def __init__(self) -> None:
        self.writes: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.holding, self.release = threading.Event(), threading.Event()
        self.hold = False

    def put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        with self.lock:
            self.writes[key] += 1
            first = self.hold and sum(self.writes.values()) == 1
        if first:
            self.holding.set()
            assert self.release.wait(5)

    def check_writable(self) -> None:
        pass


def test_a_second_drainer_never_delivers_an_entry_the_first_is_delivering(tmp_path: Path) -> None:
    keys = [f"upscaled/{i}.png" for i in range(5)]
    spooled(tmp_path, keys)
    bucket = RecordingBucket()
    bucket.hold = True
    first = Drainer(Spool(tmp_path, 1 << 20), bucket, BucketState(), lambda done: None)  # type: ignore[arg-type]
    second = Drainer(Spool(tmp_path, 1 << 20), bucket, BucketState(), lambda done: None)  # type: ignore[arg-type]
    running = threading.Thread(target=first.pass_once, args=(1.0,))
    running.start()
    assert bucket.holding.wait(5)  # the first drainer is inside its delivery of the oldest entry
    second.pass_once(1.0)  # finds that entry locked: delivers nothing, keeps the order
    bucket.release.set()
    running.join(5)
    second.pass_once(1.0)
    assert bucket.writes == Counter(keys)  # every entry exactly once


def test_drainers_racing_over_one_spool_deliver_every_entry_exactly_once(tmp_path: Path) -> None:
    keys = [f"upscaled/{i}.png" for i in range(200)]
    spooled(tmp_path, keys)
    bucket, start = RecordingBucket(), threading.Barrier(3)
    drainers = [Drainer(Spool(tmp_path, 1 << 20), bucket, BucketState(), lambda done: None) for _ in range(3)]  # type: ignore[arg-type]

    def drain_until_empty(drainer: Drainer) -> None:
        start.wait()
        while drainer.spool.totals().objects:
            drainer.pass_once(1.0)

    threads = [threading.Thread(target=drain_until_empty, args=(d,)) for d in drainers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert bucket.writes == Counter(keys)


def test_a_drainer_thread_that_dies_says_so_and_reports_not_alive(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    drainer = Drainer(Spool(tmp_path, 1 << 20), RecordingBucket(), BucketState(), lambda done: None, interval_s=0)  # type: ignore[arg-type]
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the death is the test's, not pytest's

    def broken(delay: float) -> float:
        raise RuntimeError("a bug that escapes a pass")

    monkeypatch.setattr(drainer, "pass_once", broken)
    with caplog.at_level(logging.CRITICAL, logger="ray.serve"):
        drainer.start()
        drainer._thread.join(5)
    assert not drainer.alive() and "drainer thread has died" in caplog.text


def test_a_pass_whose_report_fails_keeps_the_drainer_going(tmp_path: Path) -> None:
    spooled(tmp_path, ["upscaled/a.png"])
    bucket = RecordingBucket()

    def report(done: DrainPass) -> None:
        raise StorageUnreachableError("the metrics agent is gone")

    drainer = Drainer(Spool(tmp_path, 1 << 20), bucket, BucketState(), report)  # type: ignore[arg-type]
    assert drainer.pass_once(1.0) == 1.0 and bucket.writes == Counter(["upscaled/a.png"])
