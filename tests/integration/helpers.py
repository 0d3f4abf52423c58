"""Small helpers the app tests share."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def upload(
    client: httpx.Client, data: bytes, filename: str = "photo.jpg", content_type: str = "image/jpeg"
) -> httpx.Response:
    return client.post("/api/images/upload", files={"image": (filename, data, content_type)})


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".health-"))


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(open_image(data))
