"""When storage cannot be written, health says why (503) and uploads are refused with nothing kept."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests import images
from tests.integration.conftest import deployed
from tests.integration.helpers import upload
from tests.s3servers import free_ports

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(serve_url: str) -> Iterator[httpx.Client]:
    (port,) = free_ports(1)  # nothing listens here: the S3 endpoint is down
    settings = {"s3_bucket": "down-bucket", "s3_endpoint_url": f"http://127.0.0.1:{port}"}
    with deployed(serve_url, wait_healthy=False, **settings) as c:
        yield c


def test_health_is_503_with_the_reason(client: httpx.Client) -> None:
    response = client.get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and any("down-bucket" in r for r in body["reasons"])


@pytest.mark.parametrize(("size", "name"), [((3840, 2160), "good"), ((64, 64), "small")])
def test_uploads_are_refused_with_503(client: httpx.Client, size: tuple[int, int], name: str) -> None:
    response = upload(client, images.jpeg(*size), f"{name}.jpg")
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False and body["error"] == "storage_unavailable"
    assert "nothing was stored" in body["message"]
