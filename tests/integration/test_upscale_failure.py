"""When upscaling fails, the original is kept in couldn't_upscale/ and the service keeps serving.

Two ways in, on a real Ray Serve: the upscaler replica really fails (a registered model whose file is
gone by the time a request names it: its load raises inside the replica), and an image over
MAX_UPSCALE_PIXELS, which the flow keeps without sending it to the upscaler at all."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import images
from models.registry import resolve
from tests.integration.conftest import deployed
from tests.integration.helpers import stored_path, upload

pytestmark = pytest.mark.integration

VANISHING = "vanishing-x2"  # registered, loaded at start, its file deleted before a request names it


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
def client(serve_url: str, storage: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    models = tmp_path_factory.mktemp("models")
    weights = models / f"{VANISHING}.safetensors"
    shutil.copyfile(resolve("vcsr-m-x2").path, weights)
    registry = models / "models.yaml"
    registry.write_text(
        f"models:\n  - name: {VANISHING}\n    path: {weights}\n    description: deleted under the app\n"
    )
    # Inputs over 2,500 pixels are not upscaled (the flow checks before shipping their pixels).
    settings = {"storage_dir": str(storage), "max_upscale_pixels": 2500, "model_registry": str(registry)}
    with deployed(serve_url, **settings) as c:
        assert VANISHING in [m["name"] for m in c.get("/api/models").json()]  # listed (and the list kept)
        weights.unlink()
        yield c


def test_an_upscaler_that_fails_leaves_the_original_in_couldnt_upscale(client: httpx.Client, storage: Path) -> None:
    data = images.png(40, 40, seed=3)
    response = client.post(
        "/api/images/upload", files={"image": ("fails.png", data, "image/png")}, data={"model": VANISHING}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and "couldn't_upscale" in body["message"]
    result = body["result"]
    assert (result["folder"], result["status"], result["model"]) == ("couldn't_upscale", "error", VANISHING)
    assert result["key"].startswith("couldn't_upscale/fails-")
    assert stored_path(storage, result).read_bytes() == data


def test_an_image_over_the_upscale_limit_is_kept_without_reaching_the_upscaler(
    client: httpx.Client, storage: Path
) -> None:
    data = images.png(60, 60)
    result = upload(client, data, "large.png", "image/png").json()["result"]
    assert (result["folder"], result["status"], result["upscale_scale"]) == ("couldn't_upscale", "error", 2)
    assert "decode" not in result["timings_ms"]  # refused from the header: no pixel decoded or shipped
    assert stored_path(storage, result).read_bytes() == data


def test_the_service_keeps_serving_after_a_failure(client: httpx.Client) -> None:
    upload(client, images.png(60, 60, seed=5), "large.png", "image/png")
    client.post(
        "/api/images/upload", files={"image": ("f.png", images.png(30, 30), "image/png")}, data={"model": VANISHING}
    )
    result = upload(client, images.png(40, 40), "works.png", "image/png").json()["result"]
    assert result["folder"] == "upscaled" and result["status"] == "success"
    assert client.get("/api/health").json() == {"status": "healthy"}
