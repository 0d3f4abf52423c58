"""UPSCALE_SCALE=auto over HTTP on the real app: each upload gets the smallest scale that lifts its
resolution score to the threshold, with the model family its quality asks for."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from bench import images
from models.precision import vnni_cpu
from tests.integration.conftest import deployed
from tests.integration.helpers import upload

pytestmark = pytest.mark.integration
pytest.importorskip("skimage")
from skimage import data  # noqa: E402


@pytest.fixture(scope="module")
def client(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    storage = tmp_path_factory.mktemp("auto") / "storage"
    # 400² is 0.0193 of 4K: ×2 gives 0.077, past 0.05. 200² is 0.0048: ×2 gives 0.019, so ×4 (0.077).
    with deployed(serve_url, storage_dir=str(storage), upscale_scale="auto", quality_threshold=0.05) as c:
        yield c


def photo(size: int, noise_sigma: float = 0.0, jpeg_quality: int | None = None) -> bytes:
    """scikit-image's astronaut at ``size``², with Gaussian noise of ``noise_sigma`` levels, as a PNG or
    a JPEG of ``jpeg_quality``."""
    pixels = np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS), float)
    noisy = pixels + np.random.default_rng(5).normal(0, noise_sigma, pixels.shape) if noise_sigma else pixels
    image = Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    if jpeg_quality is None:
        return images.encode(image, "PNG")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=jpeg_quality)
    return buffer.getvalue()


def post(client: httpx.Client, blob: bytes) -> dict[str, Any]:
    jpeg = blob.startswith(b"\xff\xd8")
    response = upload(client, blob, "photo.jpg" if jpeg else "photo.png", "image/jpeg" if jpeg else "image/png")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def test_each_upload_gets_the_smallest_scale_that_reaches_the_threshold(client: httpx.Client) -> None:
    larger, smaller = post(client, photo(400)), post(client, photo(200))
    assert (larger["route"], larger["model"], larger["output_width"]) == ("clean", "vcsr-m-x2", 800)
    assert (smaller["route"], smaller["model"], smaller["output_width"]) == ("clean", "vcsr-m-x4", 800)
    assert (larger["upscale_scale"], smaller["upscale_scale"]) == (2, 4)


def test_a_noisy_small_upload_gets_the_real_world_model_at_x4(client: httpx.Client) -> None:
    result = post(client, photo(200, noise_sigma=10))
    assert (result["route"], result["model"], result["upscale_scale"]) == ("noisy", "vcsr-real-x4", 4)


def test_a_jpeg_gets_the_jpeg_specialist_at_x2_and_at_x4(
    client: httpx.Client,
) -> None:
    larger, smaller = post(client, photo(400, jpeg_quality=50)), post(client, photo(200, jpeg_quality=50))
    assert (larger["route"], larger["model"], larger["upscale_scale"]) == ("jpeg-artefacts", "vcsr-jpeg-x2", 2)
    assert (smaller["route"], smaller["model"], smaller["upscale_scale"]) == ("jpeg-artefacts", "vcsr-jpeg-x4", 4)
    assert (larger["precision"] == "int8") == vnni_cpu()  # its int8 build takes the JPEG's quality as an input
    assert larger["output_width"] == 800 and larger["quality_metrics"]["jpeg_quality"] == 50


def test_the_models_list_says_which_family_each_routed_model_serves(client: httpx.Client) -> None:
    models = {m["name"]: m["routed_as"] for m in client.get("/api/models").json()}
    assert {n: f for n, f in models.items() if f} == {
        "vcsr-m-x2": "fidelity",
        "vcsr-real-x2": "real",
        "vcsr-jpeg-x2": "jpeg",
        "vcsr-m-x4": "fidelity",
        "vcsr-real-x4": "real",
        "vcsr-jpeg-x4": "jpeg",
    }
