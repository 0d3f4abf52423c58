"""The S3 backend against real servers over HTTP on 127.0.0.1: moto (API shape) and SeaweedFS (which
checks SigV4 signatures and checksums like S3 does)."""

import hashlib
from pathlib import Path

import pytest
import requests

from bench.s3servers import S3Server, free_ports, seaweedfs_server
from deployments.contracts.errors import (
    ObjectNotFoundError,
    StorageConflictError,
    StorageError,
    StorageUnreachableError,
)
from deployments.storage.s3 import S3Backend

pytestmark = pytest.mark.integration


@pytest.fixture
def server(s3_server: S3Server) -> S3Server:
    return s3_server


@pytest.fixture
def backend(server: S3Server) -> S3Backend:
    return S3Backend(server.bucket, "us-east-1", server.endpoint, "path")


def test_put_stores_the_exact_bytes_with_metadata(backend: S3Backend, server: S3Server) -> None:
    data = b"\x89PNG fake" * 1000
    stored = backend.put("upscaled/x-0123456789abcdef.png", data, "image/png", {"width": "10"})
    assert stored.created and stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    obj = server.client().get_object(Bucket=server.bucket, Key=stored.key)
    assert obj["Body"].read() == data
    assert obj["ContentType"] == "image/png" and obj["Metadata"]["width"] == "10"


def test_the_url_points_at_the_object(backend: S3Backend, server: S3Server) -> None:
    stored = backend.put("couldn't_upscale/o-0123456789abcdef.jpg", b"jpeg bytes", "image/jpeg", {})
    assert stored.url == f"{server.endpoint}/{server.bucket}/couldn%27t_upscale/o-0123456789abcdef.jpg"
    presigned = backend.client.generate_presigned_url("get_object", Params={"Bucket": server.bucket, "Key": stored.key})
    assert presigned.split("?")[0] == stored.url
    assert requests.get(presigned, timeout=10).content == b"jpeg bytes"


def test_a_retry_is_idempotent_and_different_bytes_never_overwrite(backend: S3Backend) -> None:
    key = "good_quality/r-0123456789abcdef.jpg"
    backend.put(key, b"one", "image/jpeg", {})
    assert not backend.put(key, b"one", "image/jpeg", {}).created
    with pytest.raises(StorageConflictError):
        backend.put(key, b"two", "image/jpeg", {})
    assert backend.get(key) == b"one"


def test_health_check_passes_for_a_reachable_bucket(backend: S3Backend) -> None:
    backend.check_writable()


def test_a_missing_bucket_is_reported_without_naming_it(server: S3Server) -> None:
    with pytest.raises(StorageError, match="refused") as refused:
        S3Backend("no-such-bucket", "us-east-1", server.endpoint, "path").check_writable()
    assert not isinstance(refused.value, StorageUnreachableError)  # not transient: never spooled
    assert "no-such-bucket" not in refused.value.message and server.endpoint not in refused.value.message


def test_a_retry_of_the_same_logical_output_reads_what_is_there(backend: S3Backend) -> None:
    key = "upscaled/e-0123456789abcdef.png"
    first = backend.put(key, b"bf16 bytes", "image/png", {})
    found = backend.existing(key)
    assert (found.sha256, found.size, found.created) == (first.sha256, first.size, False)


def test_an_unreachable_endpoint_fails_fast_with_a_storage_error() -> None:
    (port,) = free_ports(1)
    backend = S3Backend("b", "us-east-1", f"http://127.0.0.1:{port}", "path", max_attempts=1)
    with pytest.raises(StorageUnreachableError, match="did not answer") as failed:
        backend.put("k/x-0123456789abcdef.png", b"x", "image/png", {})
    assert str(port) not in failed.value.message  # no endpoint in what clients may see


def test_a_bad_signature_is_refused_by_seaweedfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto does not check signatures; SeaweedFS does, like S3.
    with seaweedfs_server(tmp_path) as server:
        _put_with_wrong_secret(server, monkeypatch)


def _put_with_wrong_secret(server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    backend = S3Backend(server.bucket, "us-east-1", server.endpoint, "path", max_attempts=1)
    with pytest.raises(StorageError, match="SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId"):
        backend.put("k/x-0123456789abcdef.png", b"x", "image/png", {})


def test_download_url_is_presigned_expiring_and_fetches_the_object(backend: S3Backend) -> None:
    stored = backend.put("upscaled/d-0123456789abcdef.png", b"png bytes", "image/png", {})
    url = backend.download_url(stored.key, 120)
    assert backend.presigns  # the ingress asks storage this once, then asks for URLs
    assert url is not None and url.split("?")[0] == stored.url
    assert "X-Amz-Expires=120" in url and "X-Amz-Signature=" in url
    assert requests.get(url, timeout=10).content == b"png bytes"


def test_a_missing_object_is_not_found(backend: S3Backend) -> None:
    with pytest.raises(ObjectNotFoundError):
        backend.get("upscaled/none-0123456789abcdef.png")


def test_delete_removes_the_object_and_a_missing_key_is_no_error(backend: S3Backend) -> None:
    backend.put("jobs/job-0123456789/0000.png", b"input", "image/png", {})
    backend.delete("jobs/job-0123456789/0000.png")
    with pytest.raises(ObjectNotFoundError):
        backend.get("jobs/job-0123456789/0000.png")
    backend.delete("jobs/job-0123456789/0000.png")


def test_a_failure_is_logged_without_the_endpoints_credentials(caplog: pytest.LogCaptureFixture) -> None:
    (port,) = free_ports(1)  # nothing listens there
    backend = S3Backend("bucket", "us-east-1", f"http://user:hunter2@127.0.0.1:{port}", "path", max_attempts=1)
    with caplog.at_level("WARNING", logger="ray.serve"), pytest.raises(StorageUnreachableError):
        backend.check_writable()
    assert f"127.0.0.1:{port}" in caplog.text and "hunter2" not in caplog.text
