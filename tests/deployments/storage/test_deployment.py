"""The storage deployment class outside Serve, over a backend that can be switched off: writes the
bucket cannot take are kept in the spool (pending, final key), drained in order once it answers; a
retry of the same logical output with other bytes is already stored, never a 5xx."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

import deployments.flow.recent as recent
import deployments.storage.deployment as deployment
from configs.settings import load_settings
from deployments.contracts.errors import (
    ObjectNotFoundError,
    SpoolFullError,
    StorageConflictError,
    StorageError,
    StorageRefusedError,
    StorageUnreachableError,
)
from deployments.contracts.values import EncodedImage, Folder, StoredObject
from deployments.storage.deployment import Storage


class NoMetrics:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class SwitchableBucket:
    """An in-memory bucket with S3's create-only semantics that can stop answering."""

    name = "s3"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.up = True
        self.puts = 0

    def _check(self) -> None:
        if not self.up:
            raise StorageUnreachableError("the storage bucket did not answer")

    def url(self, key: str) -> str:
        return f"https://bucket.example/{key}"

    def put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> StoredObject:
        self._check()
        self.puts += 1
        if key in self.objects:
            if self.objects[key] != data:
                raise StorageConflictError(key)
            return self.existing(key)
        self.objects[key] = data
        return StoredObject(key, self.url(key), len(data), hashlib.sha256(data).hexdigest(), created=True)

    def existing(self, key: str) -> StoredObject:
        data = self.objects[key]
        return StoredObject(key, self.url(key), len(data), hashlib.sha256(data).hexdigest(), created=False)

    def get(self, key: str) -> bytes:
        self._check()
        if key not in self.objects:
            raise ObjectNotFoundError(key)
        return self.objects[key]

    def delete(self, key: str) -> None:
        self._check()
        self.objects.pop(key, None)

    def check_writable(self) -> None:
        self._check()

    def check_client(self) -> None:
        pass


@pytest.fixture
def bucket() -> SwitchableBucket:
    return SwitchableBucket()


def make_storage(monkeypatch: pytest.MonkeyPatch, bucket: SwitchableBucket, spool: Path, **settings: Any) -> Any:
    monkeypatch.setattr(deployment, "StorageMetrics", NoMetrics)
    monkeypatch.setattr(deployment, "make_backend", lambda s: bucket)
    monkeypatch.setattr(deployment.Drainer, "start", lambda self: None)  # the test drives each pass
    monkeypatch.setattr(deployment.Drainer, "alive", lambda self: True)
    return Storage.func_or_class(load_settings(s3_bucket="uploads", spool_dir=spool, **settings))


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch, bucket: SwitchableBucket, tmp_path: Path) -> Any:
    return make_storage(monkeypatch, bucket, tmp_path / "spool")


def image(data: bytes) -> EncodedImage:
    return EncodedImage(data, "png", "image/png", 4, 4)


def put(storage: Any, data: bytes, name: str = "a.png", variant: str | None = None) -> StoredObject:
    digest = hashlib.sha256(data).hexdigest()
    folder = Folder.UPSCALED if variant else Folder.GOOD_QUALITY
    result: StoredObject = asyncio.run(storage.put(folder, name, digest, image(data), variant))
    return result


def test_with_the_bucket_up_objects_go_straight_to_it(storage: Any, bucket: SwitchableBucket) -> None:
    stored = put(storage, b"one")
    assert stored.created and not stored.pending and bucket.objects[stored.key] == b"one"
    assert asyncio.run(storage.spool_status()).objects == 0


def test_with_the_bucket_down_uploads_are_kept_then_delivered_in_order(storage: Any, bucket: SwitchableBucket) -> None:
    bucket.up = False
    stored = [put(storage, f"image {i}".encode(), f"{i}.png") for i in range(3)]
    assert all(s.pending and s.created for s in stored) and bucket.objects == {}
    assert stored[0].url == bucket.url(stored[0].key)  # the final key and URL, already
    assert asyncio.run(storage.get(stored[1].key)) == b"image 1"  # readable while pending
    status = asyncio.run(storage.spool_status())
    assert (status.objects, status.bucket_reachable) == (3, False)
    assert asyncio.run(storage.unavailable_reason()) is None  # the spool has room: healthy

    storage.drainer.pass_once(1.0)  # still down: nothing moves, nothing is lost
    assert asyncio.run(storage.spool_status()).objects == 3
    bucket.up = True
    storage.drainer.pass_once(1.0)
    assert list(bucket.objects) == [s.key for s in stored]  # in order, once each
    assert [bucket.objects[s.key] for s in stored] == [b"image 0", b"image 1", b"image 2"]
    status = asyncio.run(storage.spool_status())
    assert (status.objects, status.bucket_reachable) == (0, True)
    assert not put(storage, b"later").pending


def test_once_down_later_writes_skip_the_bucket_until_it_answers(storage: Any, bucket: SwitchableBucket) -> None:
    bucket.up = False
    put(storage, b"first")
    put(storage, b"second")
    bucket.up = True
    assert put(storage, b"third").pending and bucket.puts == 0  # no timeout paid per upload
    storage.drainer.pass_once(1.0)
    assert len(bucket.objects) == 3 and not put(storage, b"fourth").pending


def test_a_retried_upload_while_down_is_spooled_once(storage: Any, bucket: SwitchableBucket) -> None:
    bucket.up = False
    first, again = put(storage, b"same"), put(storage, b"same")
    assert first.key == again.key and first.created and not again.created
    assert asyncio.run(storage.spool_status()).objects == 1


def test_a_full_spool_refuses_with_503_and_health_says_so(
    monkeypatch: pytest.MonkeyPatch, bucket: SwitchableBucket, tmp_path: Path
) -> None:
    storage = make_storage(monkeypatch, bucket, tmp_path / "spool", spool_max_bytes=500)
    bucket.up = False
    put(storage, b"x" * 200)
    with pytest.raises(SpoolFullError) as refused:
        put(storage, b"y" * 200, "b.png")
    assert refused.value.retry_after_s and "nothing was stored" in refused.value.message
    reason = asyncio.run(storage.unavailable_reason())
    assert reason and "spool is full" in reason and str(tmp_path) not in reason


def test_the_same_logical_output_with_other_bytes_is_already_stored(storage: Any, bucket: SwitchableBucket) -> None:
    # A retry served by a replica that runs another precision: same source, model, scale, format.
    first = put(storage, b"source", variant="vcsr-m-x2:x2:png")
    bucket.objects[first.key] = b"bfloat16 output"
    retry = put(storage, b"source", variant="vcsr-m-x2:x2:png")
    assert retry.key == first.key and not retry.created
    assert bucket.objects[first.key] == b"bfloat16 output"  # never overwritten


def test_an_original_with_other_bytes_under_its_key_is_still_a_conflict(storage: Any, bucket: SwitchableBucket) -> None:
    first = put(storage, b"original")
    bucket.objects[first.key] = b"something else"
    with pytest.raises(StorageConflictError):
        put(storage, b"original")


def test_without_a_bucket_there_is_no_spool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(deployment, "StorageMetrics", NoMetrics)
    storage = Storage.func_or_class(load_settings(storage_dir=tmp_path / "store", spool_dir=tmp_path / "spool"))
    assert storage.spool is None and asyncio.run(storage.spool_status()) is None
    assert asyncio.run(storage.presigns()) is False  # local files: the ingress's object route serves them
    storage.check_health()


def test_check_health_fails_when_the_spool_folder_cannot_be_written(storage: Any, tmp_path: Path) -> None:
    storage.check_health()
    storage.spool.folder = tmp_path / "gone"
    with pytest.raises(StorageError, match="spool folder is not writable"):
        storage.check_health()


def test_check_health_fails_once_the_drainer_thread_has_died(
    monkeypatch: pytest.MonkeyPatch, bucket: SwitchableBucket, tmp_path: Path
) -> None:
    thread_alive = deployment.Drainer.alive
    storage = make_storage(monkeypatch, bucket, tmp_path / "spool")
    monkeypatch.setattr(deployment.Drainer, "alive", thread_alive)  # the real check, on a real thread
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the death is the test's, not pytest's

    def broken(delay: float) -> float:
        raise RuntimeError("a bug that escapes a pass")

    monkeypatch.setattr(storage.drainer, "pass_once", broken)
    monkeypatch.setattr(storage.drainer, "interval_s", 0.0)
    storage.drainer._thread.start()
    storage.drainer._thread.join(5)
    with pytest.raises(StorageError, match="drainer thread has stopped"):
        storage.check_health()


def put_input(storage: Any, data: bytes, index: int = 0) -> StoredObject:
    result: StoredObject = asyncio.run(storage.put_job_input("job-0123456789", index, image(data)))
    return result


def test_a_job_input_is_deleted_once_its_item_ended(storage: Any, bucket: SwitchableBucket) -> None:
    kept = put(storage, b"a result")
    stored = put_input(storage, b"an input")
    assert asyncio.run(storage.delete_job_input(stored.key)) is True
    assert bucket.objects == {kept.key: b"a result"}
    assert asyncio.run(storage.delete_job_input(stored.key)) is True  # idempotent


def test_only_job_inputs_can_be_deleted(storage: Any, bucket: SwitchableBucket) -> None:
    kept = put(storage, b"a result")
    for key in (kept.key, "jobs/../good_quality/x.png", "jobs/job-0123456789/0000.png/../../x"):
        with pytest.raises(ValueError, match="not a job input"):
            asyncio.run(storage.delete_job_input(key))
    assert kept.key in bucket.objects


def test_a_spooled_job_input_is_deleted_before_it_reaches_the_bucket(storage: Any, bucket: SwitchableBucket) -> None:
    bucket.up = False
    stored = put_input(storage, b"waits in the spool")
    kept = put_input(storage, b"another item's input, still needed", index=1)
    assert stored.pending and asyncio.run(storage.delete_job_input(stored.key)) is True
    bucket.up = True
    storage.drainer.pass_once(0.1)
    assert bucket.objects == {kept.key: b"another item's input, still needed"}
    assert not storage.spool.entries()


class CountingMetrics(NoMetrics):
    def __init__(self) -> None:
        self.dead = 0

    def dead_lettered(self, count: int) -> None:
        self.dead += count


def test_an_object_the_bucket_refuses_for_good_is_counted_and_the_rest_delivered(
    storage: Any, bucket: SwitchableBucket
) -> None:
    bucket.up = False
    refused, kept = put(storage, b"refused", "refused.png"), put(storage, b"kept", "kept.png")
    bucket.up, storage.metrics = True, CountingMetrics()
    real_put = bucket.put

    def refusing_put(key: str, *args: Any) -> StoredObject:
        if key == refused.key:
            raise StorageRefusedError("the storage bucket refused writing (AccessDenied)")
        return real_put(key, *args)

    bucket.put = refusing_put  # type: ignore[method-assign]
    storage.drainer.pass_once(0.1)
    assert bucket.objects == {kept.key: b"kept"} and storage.metrics.dead == 1
    assert asyncio.run(storage.spool_status()).objects == 0 and asyncio.run(storage.spool_status()).bucket_reachable


def test_the_health_probe_is_shared_and_reused_then_made_again(
    monkeypatch: pytest.MonkeyPatch, bucket: SwitchableBucket, tmp_path: Path
) -> None:
    """Every ingress replica asks for health: one bucket HEAD (and spool write) serves all of them for
    HEALTH_CACHE_S, and a bucket that went down shows once that has passed."""
    now = [1000.0]
    monkeypatch.setattr(recent, "monotonic", lambda: now[0])
    storage = make_storage(monkeypatch, bucket, tmp_path / "spool", health_cache_s=2.0, spool_max_bytes=0)
    probes = 0
    real_check = bucket.check_writable

    def counted() -> None:
        nonlocal probes
        probes += 1
        real_check()

    monkeypatch.setattr(bucket, "check_writable", counted)

    async def scenario() -> list[str | None]:
        answers = list(await asyncio.gather(*(storage.unavailable_reason() for _ in range(20))))
        bucket.up = False
        answers.append(await storage.unavailable_reason())  # within the window: the recent probe
        now[0] += 2.5
        answers.append(await storage.unavailable_reason())
        return answers

    answers = asyncio.run(scenario())
    assert answers[:21] == [None] * 21 and probes == 2
    assert answers[21] is not None and "spool" in answers[21]  # down, and no room to keep uploads
