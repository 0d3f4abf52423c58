"""Models by name over HTTP: the registry file, Serve model multiplexing, GET /api/models, formats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import images
from tests.bundled import BUNDLED
from tests.integration.conftest import deployed
from tests.integration.helpers import open_image, stored_bytes, upload

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(serve_url: str, shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("models")
    registry = root / "models.yaml"
    weights = shared_dir / "weights" / "realesr-animevideov3.pth"
    registry.write_text(f"models:\n  - name: realesr-animevideov3\n    path: {weights}\n    description: anime ×4\n")
    with deployed(serve_url, storage_dir=str(root / "storage"), model_registry=str(registry)) as c:
        yield c


def post(client: httpx.Client, data: bytes, **fields: str) -> httpx.Response:
    return client.post("/api/images/upload", files={"image": ("a.png", data, "image/png")}, data=fields)


def test_models_are_listed_with_scales_sizes_and_scores(client: httpx.Client) -> None:
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert set(models) == BUNDLED | {"realesr-animevideov3"}
    assert models["vcsr-m-x2"]["default"] and models["vcsr-m-x2"]["scale"] == 2
    assert not models["vcsr-s-x2"]["default"]
    assert models["vcsr-m-x2"]["psnr"]["Set5"] >= 37.53 and models["vcsr-m-x4"]["psnr"]["BSD100"] >= 27.29
    assert models["realesr-animevideov3"]["scale"] == 4 and models["realesr-animevideov3"]["file_bytes"] > 1e6


def test_a_community_model_is_served_by_name_at_its_scale(client: httpx.Client) -> None:
    response = post(client, images.png(48, 32), model="realesr-animevideov3")
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["model"] == "realesr-animevideov3" and result["upscale_scale"] == 4
    assert open_image(stored_bytes(client, result)).size == (192, 128)


def test_requests_for_different_models_share_the_service(client: httpx.Client) -> None:
    data = images.png(40, 40, seed=8)
    x4 = post(client, data, model="vcsr-s-x4").json()["result"]
    default = post(client, data).json()["result"]
    assert (x4["model"], x4["upscale_scale"]) == ("vcsr-s-x4", 4)
    assert (default["model"], default["upscale_scale"]) == ("vcsr-m-x2", 2)
    assert x4["key"] != default["key"]
    assert open_image(stored_bytes(client, x4)).size == (160, 160)
    assert open_image(stored_bytes(client, default)).size == (80, 80)


def test_an_unknown_model_is_a_422_listing_the_valid_names(client: httpx.Client) -> None:
    response = post(client, images.png(8, 8), model="nope")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "unknown_model" and "realesr-animevideov3" in body["message"]


@pytest.mark.parametrize(("fmt", "pil_format", "extension"), [("webp", "WEBP", "webp"), ("jpeg", "JPEG", "jpg")])
def test_output_format_on_request(client: httpx.Client, fmt: str, pil_format: str, extension: str) -> None:
    result = post(client, images.png(24, 24), format=fmt).json()["result"]
    assert result["key"].endswith("." + extension) and open_image(stored_bytes(client, result)).format == pil_format


def test_an_unknown_output_format_is_refused(client: httpx.Client) -> None:
    response = post(client, images.png(8, 8), format="gif")
    assert response.status_code == 422 and response.json()["error"] == "unknown_format"


def test_a_default_upload_still_works_with_the_original_curl(client: httpx.Client) -> None:
    assert upload(client, images.jpeg(64, 64)).json()["result"]["folder"] == "upscaled"
