"""Every kind of bad input gets a clear JSON error with the right status, nothing is stored, and the
service keeps serving. One test per row of the table in the pipeline issue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import images
from tests.integration.conftest import deployed
from tests.integration.helpers import stored_files, upload

pytestmark = pytest.mark.integration

LIMIT = 8 * 1024 * 1024
API_KEY = "test-api-key-0123456789"


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
def client(serve_url: str, storage: Path) -> Iterator[httpx.Client]:
    settings = {"storage_dir": str(storage), "max_upload_bytes": LIMIT, "max_upscale_pixels": 2500, "api_key": API_KEY}
    with deployed(serve_url, **settings) as c:
        c.headers["X-API-Key"] = API_KEY
        yield c


@pytest.fixture(autouse=True)
def nothing_stored_and_still_healthy(client: httpx.Client, storage: Path) -> Iterator[None]:
    before = stored_files(storage)
    yield
    assert stored_files(storage) == before, "a refused upload left something in storage"
    assert client.get("/api/health").json() == {"status": "healthy"}


def assert_refused(response: httpx.Response, status: int, code: str, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["error"] == code
    assert words.lower() in body["message"].lower()


def test_missing_image_field(client: httpx.Client) -> None:
    response = client.post("/api/images/upload", files={"picture": ("a.jpg", images.jpeg(8, 8), "image/jpeg")})
    assert_refused(response, 422, "missing_field", "field named 'image'")


def test_not_multipart_at_all(client: httpx.Client) -> None:
    response = client.post("/api/images/upload", json={"image": "aGVsbG8="})
    assert_refused(response, 422, "missing_field", "multipart/form-data")


def test_empty_file(client: httpx.Client) -> None:
    assert_refused(upload(client, b"", "empty.jpg"), 422, "empty_file", "empty")


def test_non_image_bytes(client: httpx.Client) -> None:
    assert_refused(upload(client, b"%!PS-Adobe-3.0 not an image", "x.jpg"), 415, "not_an_image", "not an image")


def test_truncated_jpeg_that_would_be_upscaled(client: httpx.Client) -> None:
    data = images.truncated(images.jpeg(40, 40))
    assert_refused(upload(client, data, "cut.jpg"), 422, "corrupt_image", "damaged or truncated")


def test_truncated_jpeg_that_would_be_stored_as_is(client: httpx.Client) -> None:
    data = images.truncated(images.jpeg(3840, 2160), keep=0.9)
    assert_refused(upload(client, data, "cut4k.jpg"), 422, "corrupt_image", "damaged or truncated")


def test_truncated_png(client: httpx.Client) -> None:
    data = images.truncated(images.png(40, 40))
    assert_refused(upload(client, data, "cut.png", "image/png"), 422, "corrupt_image", "damaged or truncated")


def test_decompression_bomb_is_refused_before_decoding(client: httpx.Client) -> None:
    data = images.png_bomb(30000, 30000)
    assert len(data) < 1024
    assert_refused(upload(client, data, "bomb.png", "image/png"), 413, "too_many_pixels", "30000×30000")


def test_body_over_the_limit_with_content_length(client: httpx.Client) -> None:
    data = b"\xff\xd8" + b"\x00" * (LIMIT + 1024)
    assert_refused(upload(client, data, "big.jpg"), 413, "upload_too_large", f"{LIMIT:,} bytes")


def test_body_over_the_limit_streamed_without_length(client: httpx.Client) -> None:
    boundary = "vcsboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(LIMIT // (1024 * 1024) + 2):
            yield b"\x00" * (1024 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/api/images/upload", content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert_refused(response, 413, "upload_too_large", "MAX_UPLOAD_BYTES")


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("a.gif", images.gif(), "GIF"),
        ("a.bmp", images.bmp(), "BMP"),
        ("a.tiff", images.encode(images.noise(16, 16), "TIFF"), "TIFF"),
    ],
    ids=["gif", "bmp", "tiff"],
)
def test_unsupported_formats_are_named(client: httpx.Client, name: str, data: bytes, fmt: str) -> None:
    assert_refused(
        upload(client, data, name, "image/" + fmt.lower()), 415, "unsupported_format", f"{fmt} images are not supported"
    )


def test_animated_images(client: httpx.Client) -> None:
    assert_refused(upload(client, images.animated_png(), "anim.png", "image/png"), 415, "animated_image", "animated")


def test_missing_api_key(client: httpx.Client) -> None:
    response = client.post(
        "/api/images/upload", files={"image": ("a.png", images.png(8, 8), "image/png")}, headers={"X-API-Key": "wrong"}
    )
    assert_refused(response, 401, "unauthorized", "API key")
