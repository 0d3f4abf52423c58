"""An upscale past UPSCALE_TIMEOUT_S is cancelled and the original kept in couldn't_upscale/ (status
error), like any failure; the upscaler replica stays healthy."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bench import images
from tests.integration.conftest import deployed
from tests.integration.helpers import stored_bytes, upload

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    # 50 ms: far less than any 640×480 upscale takes on a CPU (~0.3 s at the model's 1.3 MP/s).
    with deployed(serve_url, storage_dir=str(tmp_path_factory.mktemp("storage")), upscale_timeout_s=0.05) as c:
        yield c


def test_past_its_deadline_the_original_is_kept(client: httpx.Client) -> None:
    data = images.png(640, 480, seed=7)
    response = upload(client, data, "slow.png", "image/png")
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert (result["folder"], result["status"]) == ("couldn't_upscale", "error")
    assert stored_bytes(client, result) == data
    assert client.get("/api/health").status_code == 200
