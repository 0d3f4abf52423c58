"""Metadata after a real upload (real Ray Serve, real upscaler, local storage): a JPEG with EXIF
(camera, GPS position) and an ICC profile, upscaled to PNG, WebP and JPEG, keeps its ICC profile and
its EXIF without the GPS position (KEEP_GPS is off by default); an original stored as uploaded keeps
every byte, GPS included: it is the uploader's own file."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import ExifTags, Image, ImageCms

from bench import images
from tests.integration.conftest import deployed
from tests.integration.helpers import open_image, stored_path

pytestmark = pytest.mark.integration

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "VisionCloud test camera"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (52.0, 31.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (13.0, 24.0, 36.0)
    return exif


def photo(width: int, height: int) -> bytes:
    return images.jpeg(width, height, seed=21, exif=exif_with_gps(), icc_profile=ICC)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
def client(serve_url: str, storage: Path) -> Iterator[httpx.Client]:
    with deployed(serve_url, storage_dir=str(storage), upscale_scale=2, device="cpu") as c:
        yield c


def post(client: httpx.Client, data: bytes, **form: str) -> dict[str, object]:
    response = client.post("/api/images/upload", files={"image": ("gps.jpg", data, "image/jpeg")}, data=form)
    assert response.status_code == 200, response.text
    return dict(response.json()["result"])


def test_the_input_carries_what_the_outputs_are_checked_for() -> None:
    source = Image.open(io.BytesIO(photo(48, 40)))
    assert source.info["icc_profile"] == ICC and source.getexif().get_ifd(ExifTags.IFD.GPSInfo)


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("webp", "WEBP"), ("jpeg", "JPEG")])
def test_an_upscaled_output_keeps_icc_and_exif_but_not_the_gps_position(
    client: httpx.Client, storage: Path, fmt: str, pil_format: str
) -> None:
    result = post(client, photo(48, 40), format=fmt)
    assert result["folder"] == "upscaled"
    output = open_image(stored_path(storage, result).read_bytes())
    assert output.format == pil_format and output.size == (96, 80)
    assert output.info.get("icc_profile") == ICC
    exif = output.getexif()
    assert exif.get(ExifTags.Base.Make) == "VisionCloud test camera"
    assert ExifTags.IFD.GPSInfo not in exif and exif.get_ifd(ExifTags.IFD.GPSInfo) == {}


def test_an_original_stored_as_uploaded_keeps_every_byte(client: httpx.Client, storage: Path) -> None:
    data = photo(3840, 1080)  # resolution score 0.5: good quality, stored as uploaded
    result = post(client, data)
    assert result["folder"] == "good_quality"
    assert stored_path(storage, result).read_bytes() == data
