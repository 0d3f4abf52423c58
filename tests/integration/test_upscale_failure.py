"""When upscaling fails, the original is kept in couldn't_upscale/ and the service keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
import pytest

from bench import images
from tests.integration.conftest import deployed
from tests.integration.helpers import upload

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    # Inputs over 2,500 pixels are not upscaled (the flow checks before shipping their pixels; the
    # replica would refuse them too): they are kept in couldn't_upscale/ as a failed upscale is.
    storage = tmp_path_factory.mktemp("storage")
    with deployed(serve_url, storage_dir=str(storage), max_upscale_pixels=2500) as c:
        yield c


def test_a_failed_upscale_keeps_the_original_in_couldnt_upscale(client: httpx.Client) -> None:
    data = images.png(60, 60)
    response = upload(client, data, "fails.png", "image/png")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and "couldn't_upscale" in body["message"]
    result = body["result"]
    assert result["folder"] == "couldn't_upscale" and result["status"] == "error"
    assert result["upscale_scale"] == 2 and result["key"].startswith("couldn't_upscale/fails-")
    assert Path(unquote(urlparse(result["s3_url"]).path)).read_bytes() == data


def test_the_service_keeps_serving_after_a_failure(client: httpx.Client) -> None:
    upload(client, images.png(60, 60, seed=5), "fails.png", "image/png")
    result = upload(client, images.png(40, 40), "works.png", "image/png").json()["result"]
    assert result["folder"] == "upscaled" and result["status"] == "success"
    assert client.get("/api/health").json() == {"status": "healthy"}
