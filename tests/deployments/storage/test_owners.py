"""Objects belong to the API keys that stored them: a zero-byte marker per (owner, object) written with
the object, on the local backend and through the bucket's spool alike. ``created`` (the API's
``duplicate``) is about the caller's own uploads; reads and presigned URLs answer only the owners."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from bench.s3servers import S3Server
from configs.settings import load_settings
from deployments.contracts.errors import ObjectNotFoundError
from deployments.contracts.values import EncodedImage, Folder, StoredObject
from deployments.storage.deployment import Storage
from deployments.storage.keys import owner_key
from tests.deployments.storage.test_deployment import SwitchableBucket, make_storage

ALICE, BOB = "a1a1a1a1a1a1", "b2b2b2b2b2b2"


class PresigningBucket(SwitchableBucket):
    presigns = True

    def download_url(self, key: str, expires_s: int) -> str | None:
        return f"https://bucket.example/{key}?signed"


@pytest.fixture
def local(tmp_path: Path) -> Any:
    return Storage.func_or_class(load_settings(storage_dir=tmp_path, s3_bucket=None))  # type: ignore[attr-defined]


def put(storage: Any, data: bytes, owner: str | None) -> StoredObject:
    image = EncodedImage(data, "png", "image/png", 4, 4)
    digest = hashlib.sha256(data).hexdigest()
    stored: StoredObject = asyncio.run(storage.put(Folder.UPSCALED, "a.png", digest, image, "m:x2:png", owner))
    return stored


def get(storage: Any, key: str, owner: str | None) -> bytes:
    data: bytes = asyncio.run(storage.get(key, owner))
    return data


def test_duplicate_is_only_ever_about_the_callers_own_uploads(local: Any, tmp_path: Path) -> None:
    first = put(local, b"same bytes", ALICE)
    again = put(local, b"same bytes", ALICE)
    other = put(local, b"same bytes", BOB)
    assert (first.created, again.created, other.created) == (True, False, True)
    assert first.key == again.key == other.key  # one content-addressed object, two owners
    assert (tmp_path / owner_key(ALICE, first.key)).stat().st_size == 0
    assert (tmp_path / owner_key(BOB, first.key)).is_file()


def test_only_an_owner_reads_an_object_and_others_get_not_found(local: Any) -> None:
    stored = put(local, b"alice's", ALICE)
    assert get(local, stored.key, ALICE) == b"alice's"
    with pytest.raises(ObjectNotFoundError) as refused:
        get(local, stored.key, BOB)
    with pytest.raises(ObjectNotFoundError) as missing:
        get(local, "upscaled/none-0123456789abcdef.png", BOB)
    assert str(refused.value.message).replace(stored.key, "K") == str(missing.value.message).replace(
        "upscaled/none-0123456789abcdef.png", "K"
    )  # the same answer as a missing object


def test_without_keys_nothing_changes(local: Any, tmp_path: Path) -> None:
    first, again = put(local, b"open", None), put(local, b"open", None)
    assert (first.created, again.created) == (True, False)
    assert get(local, first.key, None) == b"open"
    assert not (tmp_path / "owners").exists()


def test_presigned_urls_are_made_only_for_an_owner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    storage = make_storage(monkeypatch, PresigningBucket(), tmp_path / "spool")
    assert asyncio.run(storage.presigns()) is True
    stored = put(storage, b"in the bucket", ALICE)
    assert asyncio.run(storage.download_url(stored.key, owner=ALICE)) == f"https://bucket.example/{stored.key}?signed"
    assert asyncio.run(storage.download_url(stored.key, owner=BOB)) is None


def test_with_the_bucket_down_ownership_waits_in_the_spool_with_the_object(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket = SwitchableBucket()
    storage = make_storage(monkeypatch, bucket, tmp_path / "spool")
    bucket.up = False
    stored = put(storage, b"pending", ALICE)
    assert stored.pending and stored.created
    assert get(storage, stored.key, ALICE) == b"pending"  # readable by its owner while pending
    bucket.up = True
    storage.drainer.pass_once(1.0)
    assert list(bucket.objects) == [stored.key, owner_key(ALICE, stored.key)]  # the object first
    assert not put(storage, b"pending", ALICE).created


@pytest.mark.integration
def test_owners_on_a_real_s3_server(s3_server: S3Server, tmp_path: Path) -> None:
    """The same rules against moto and SeaweedFS: the markers are real (empty) objects in the bucket."""
    settings = load_settings(
        s3_bucket=s3_server.bucket,
        s3_endpoint_url=s3_server.endpoint,
        s3_addressing_style="path",
        spool_dir=tmp_path / "spool",
    )
    storage = Storage.func_or_class(settings)  # type: ignore[attr-defined]
    data = f"owned on {s3_server.endpoint}".encode()
    first, again, other = put(storage, data, ALICE), put(storage, data, ALICE), put(storage, data, BOB)
    assert (first.created, again.created, other.created, first.pending) == (True, False, True, False)
    marker = s3_server.client().get_object(Bucket=s3_server.bucket, Key=owner_key(ALICE, first.key))
    assert marker["Body"].read() == b""
    assert get(storage, first.key, BOB) == data
    with pytest.raises(ObjectNotFoundError):
        get(storage, first.key, "c3c3c3c3c3c3")
    assert asyncio.run(storage.download_url(first.key, owner="c3c3c3c3c3c3")) is None
    assert asyncio.run(storage.download_url(first.key, owner=ALICE)) is not None
