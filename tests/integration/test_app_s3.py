"""The real app storing into a real S3-compatible server (SeaweedFS, which checks signatures and
checksums like S3; and moto's standalone server) over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bench import images
from bench.s3servers import S3Server
from tests.integration.conftest import deployed
from tests.integration.helpers import open_image, upload

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3(s3_server: S3Server) -> S3Server:
    return s3_server


@pytest.fixture(scope="module")
def client(serve_url: str, s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = {
        "s3_bucket": s3.bucket,
        "s3_endpoint_url": s3.endpoint,
        "s3_addressing_style": "path",
        "spool_dir": str(tmp_path_factory.mktemp("spool")),
    }
    with deployed(serve_url, **settings) as c:
        yield c


def get_object(s3: S3Server, key: str) -> bytes:
    return bytes(s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read())


def test_health_checks_the_bucket(client: httpx.Client) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "healthy" and body["spool"]["objects"] == 0 and body["spool"]["bucket_reachable"]


def test_a_small_upload_lands_upscaled_in_the_bucket(client: httpx.Client, s3: S3Server) -> None:
    result = upload(client, images.jpeg(320, 240), "small.jpg").json()["result"]
    assert result["folder"] == "upscaled"
    assert result["s3_url"] == f"{s3.endpoint}/{s3.bucket}/{result['key']}"
    assert open_image(get_object(s3, result["key"])).size == (640, 480)
    # S3 storage says it presigns: the download URL is the bucket's, signed and expiring
    url = str(result["download_url"])
    assert url.startswith(result["s3_url"] + "?") and "X-Amz-Signature=" in url


def test_a_4k_upload_lands_as_uploaded_in_the_bucket(client: httpx.Client, s3: S3Server) -> None:
    data = images.jpeg(3840, 2160)
    result = upload(client, data, "big.jpg").json()["result"]
    assert result["folder"] == "good_quality" and get_object(s3, result["key"]) == data


def test_a_retry_is_idempotent_in_the_bucket(client: httpx.Client, s3: S3Server) -> None:
    data = images.png(32, 32, seed=4)
    first = upload(client, data, "retry.png", "image/png").json()["result"]
    second = upload(client, data, "retry.png", "image/png").json()["result"]
    assert second["key"] == first["key"] and second["duplicate"] is True
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix="upscaled/retry-")["Contents"]
    assert len(listed) == 1
