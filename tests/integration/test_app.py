"""The real application on a real Ray Serve over HTTP, with the embedded local storage."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from bench import images
from models.engine import Engine, TileEngine
from models.int8 import Int8Engine, artefact_path
from models.loader import load_model
from models.registry import default_model_name, resolve
from tests.integration.conftest import deployed
from tests.integration.helpers import open_image, pixels, stored_files, stored_path, upload

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
def client(serve_url: str, storage: Path) -> Iterator[httpx.Client]:
    with deployed(serve_url, storage_dir=str(storage), upscale_scale=2, device="cpu") as c:
        yield c


def test_health_is_healthy(client: httpx.Client) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200 and response.json() == {"status": "healthy"}


def test_openapi_documents_the_routes(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/images/upload" in paths and "/api/health" in paths


def test_a_1080p_upload_is_upscaled_to_4k(client: httpx.Client, storage: Path) -> None:
    response = upload(client, images.jpeg(1920, 1080), "holiday.jpg")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and set(body) >= {"success", "message", "result"}
    result = body["result"]
    assert set(result) >= {
        "original_key",
        "status",
        "folder",
        "s3_url",
        "quality_score",
        "upscale_scale",
        "processed_at",
    }
    assert result["folder"] == "upscaled" and result["status"] == "success"
    assert result["quality_score"] == 0.25 and result["upscale_scale"] == 2
    assert result["original_key"] == "holiday.jpg" and result["model"] == default_model_name(2)
    assert re.fullmatch(r"upscaled/holiday-[0-9a-f]{16}\.png", result["key"])
    path = stored_path(storage, result)
    assert path.is_relative_to(storage) and path.relative_to(storage).as_posix() == result["key"]
    assert open_image(path.read_bytes()).size == (3840, 2160)
    assert (result["output_width"], result["output_height"]) == (3840, 2160)


def test_a_4k_upload_is_stored_as_uploaded(client: httpx.Client, storage: Path) -> None:
    data = images.jpeg(3840, 2160, seed=1)
    result = upload(client, data).json()["result"]
    assert result["folder"] == "good_quality" and result["status"] == "success"
    assert result["quality_score"] == 1.0 and result["upscale_scale"] is None
    assert stored_path(storage, result).read_bytes() == data


def test_exactly_at_the_threshold_counts_as_good_quality(client: httpx.Client) -> None:
    result = upload(client, images.jpeg(3840, 1080)).json()["result"]  # score exactly 0.5
    assert result["quality_score"] == 0.5 and result["folder"] == "good_quality"


def test_an_8k_upload_is_accepted_as_good_quality(client: httpx.Client) -> None:
    result = upload(client, images.jpeg(7680, 4320)).json()["result"]
    assert result["quality_score"] == 4.0 and result["folder"] == "good_quality"


def test_a_1x1_upload_is_upscaled_to_2x2(client: httpx.Client, storage: Path) -> None:
    result = upload(client, images.png(1, 1), "dot.png", "image/png").json()["result"]
    assert result["folder"] == "upscaled" and open_image(stored_path(storage, result).read_bytes()).size == (2, 2)


def test_upscaled_pixels_are_the_models_output(client: httpx.Client, storage: Path) -> None:
    source = images.noise(160, 120, seed=3)
    result = upload(client, images.encode(source, "PNG"), "small.png", "image/png").json()["result"]
    assert result["precision"] in {"float32", "bfloat16", "int8"}
    spec = resolve(default_model_name(2))
    loaded = load_model(spec.path)
    if result["precision"] == "int8":  # the default on CPUs with VNNI: the committed int8 build
        engine: TileEngine = Int8Engine(artefact_path(spec.path), loaded.info)
    else:
        engine = Engine(loaded.module, loaded.info, torch.device("cpu"), getattr(torch, result["precision"]))
    expected = engine.upscale_image(np.asarray(source), tile=512)
    got = pixels(stored_path(storage, result).read_bytes())
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_a_retried_upload_is_idempotent(client: httpx.Client, storage: Path) -> None:
    data = images.png(64, 64, seed=9)
    first = upload(client, data, "again.png", "image/png").json()["result"]
    before = stored_files(storage)
    second = upload(client, data, "again.png", "image/png").json()["result"]
    assert second["key"] == first["key"] and second["duplicate"] is True and first["duplicate"] is False
    assert stored_files(storage) == before


def test_same_name_different_images_never_overwrite(client: httpx.Client, storage: Path) -> None:
    a = upload(client, images.png(40, 40, seed=1), "same.png", "image/png").json()["result"]
    b = upload(client, images.png(40, 40, seed=2), "same.png", "image/png").json()["result"]
    assert a["key"] != b["key"] and stored_path(storage, a).exists() and stored_path(storage, b).exists()


@pytest.mark.parametrize(
    ("name", "data", "mode", "size"),
    [
        ("cmyk.jpg", images.cmyk_jpeg(64, 48), "RGB", (128, 96)),
        ("palette.png", images.palette_png_with_transparency(64, 48), "RGBA", (128, 96)),
        ("rgba.png", images.png(64, 48, "RGBA"), "RGBA", (128, 96)),
        ("grey.png", images.png(64, 48, "L"), "L", (128, 96)),
        ("sixteen.png", images.png16_grey(64, 48), "L", (128, 96)),
        ("rotated.jpg", images.exif_rotated_jpeg(80, 40), "RGB", (80, 160)),
        ("photo.webp", images.encode(images.noise(64, 48), "WEBP"), "RGB", (128, 96)),
    ],
    ids=["cmyk-jpeg", "palette-png-transparency", "rgba", "greyscale", "16-bit-png", "exif-rotated", "webp"],
)
def test_awkward_but_valid_images_are_upscaled(
    client: httpx.Client, storage: Path, name: str, data: bytes, mode: str, size: tuple[int, int]
) -> None:
    response = upload(client, data, name, "application/octet-stream")
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["folder"] == "upscaled"
    output = open_image(stored_path(storage, result).read_bytes())
    assert output.mode == mode and output.size == size


def test_upscaled_16_bit_greyscale_keeps_its_range(client: httpx.Client, storage: Path) -> None:
    result = upload(client, images.png16_grey(64, 48), "ramp.png", "image/png").json()["result"]
    out = pixels(stored_path(storage, result).read_bytes())
    assert out.min() <= 2 and out.max() >= 253 and 100 < np.median(out) < 155


def test_transparency_survives_upscaling(client: httpx.Client, storage: Path) -> None:
    result = upload(client, images.palette_png_with_transparency(), "t.png", "image/png").json()["result"]
    alpha = pixels(stored_path(storage, result).read_bytes())[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd.png", "a\x01b\x7fc.png", "x" * 5000 + ".png", "фото-照片-📷.png", "/abs/path/evil.png"],
    ids=["dot-dot", "control-chars", "5000-chars", "unicode", "absolute"],
)
def test_hostile_file_names_are_stored_under_safe_keys(client: httpx.Client, storage: Path, filename: str) -> None:
    response = upload(client, images.png(20, 20, seed=len(filename)), filename, "image/png")
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert re.fullmatch(r"upscaled/[A-Za-z0-9._-]{1,64}-[0-9a-f]{16}\.png", result["key"])
    assert stored_path(storage, result).resolve().is_relative_to(storage.resolve())


def test_responses_carry_a_request_id(client: httpx.Client) -> None:
    response = upload(client, images.png(8, 8), "id.png", "image/png")
    assert response.headers["x-request-id"] == response.json()["result"]["request_id"]
