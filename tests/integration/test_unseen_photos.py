"""Quality on images nobody here trained, evaluated or tuned on, through the HTTP API.

The photographs scikit-image ships (astronaut, coffee, chelsea, …; not in ../shared's training or
evaluation sets) are cut to a multiple of the scale, shrunk with Pillow's bicubic (the literature's
protocol), uploaded, and the stored output is scored against the original beside plain bicubic.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from bench import images
from models.evaluate import bicubic
from models.metrics import psnr_y
from models.registry import default_model_name
from tests.integration.conftest import deployed
from tests.integration.helpers import open_image, stored_bytes

pytestmark = pytest.mark.integration

# Every photograph in scikit-image's bundled data, chosen before any score was seen; the drawings,
# microscopy slides and synthetic charts in the same folder are left out as not photographs.
PHOTOS = [
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "motorcycle_left.png",
    "rocket.jpg",
]
# "Clearly": a mean gain a viewer sees at a glance, and all but one photograph better than bicubic.
# The exception allowed is measured, not hoped for: moon.png (a smooth, low-contrast, greyscale
# surface that bicubic already reproduces at 42.8 dB) comes out 0.35 dB below bicubic at ×2 with
# vcsr-m-x2 (+1.03 dB at ×4); no photograph may lose more than half a decibel.
MEAN_GAIN_DB = 1.0
MAY_LOSE = 1
WORST_GAIN_DB = -0.5


def photo_dir() -> Path:
    folder = images.photo_dir()
    if folder is None:
        pytest.skip("scikit-image (a dev dependency) is not installed")
    return folder


def load(name: str, scale: int) -> tuple[NDArray[np.uint8], bytes]:
    """(the original cut to a multiple of ``scale``, its bicubic-shrunk PNG to upload)."""
    with Image.open(photo_dir() / name) as image:
        image = image.convert("L") if image.mode in ("L", "I;16", "1") else image.convert("RGB")
        hr = image.crop((0, 0, image.width // scale * scale, image.height // scale * scale))
    lr = hr.resize((hr.width // scale, hr.height // scale), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    lr.save(buffer, "PNG")
    return np.asarray(hr), buffer.getvalue()


@pytest.fixture(scope="module")
def client(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    storage = tmp_path_factory.mktemp("storage")
    with deployed(serve_url, storage_dir=str(storage), upscale_scale=2, device="cpu") as c:
        yield c


@pytest.mark.parametrize("scale", [2, 4])
def test_unseen_photographs_beat_bicubic_clearly(client: httpx.Client, scale: int) -> None:
    gains = {}
    for name in PHOTOS:
        hr, upload = load(name, scale)
        response = client.post(
            "/api/images/upload",
            files={"image": (name.rsplit(".", 1)[0] + ".png", upload, "image/png")},
            data={"model": default_model_name(scale)},
        )
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert result["folder"] == "upscaled" and result["upscale_scale"] == scale
        output = np.asarray(open_image(stored_bytes(client, result)))
        lr = np.asarray(open_image(upload))
        assert output.shape == hr.shape
        gains[name] = psnr_y(output, hr, scale) - psnr_y(bicubic(lr, scale), hr, scale)
    report = ", ".join(f"{n} {g:+.2f}" for n, g in gains.items())
    assert np.mean(list(gains.values())) >= MEAN_GAIN_DB, report
    assert sum(g <= 0 for g in gains.values()) <= MAY_LOSE, report
    assert min(gains.values()) > WORST_GAIN_DB, report
