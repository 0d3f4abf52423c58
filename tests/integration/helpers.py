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


def kill_replicas(deployment: str, app: str = "upscaler") -> int:
    """``ray.kill`` every live replica of ``deployment`` (Serve starts new ones); returns how many.
    Replicas are named actors ``SERVE_REPLICA::<app>#<deployment>#<id>`` in the ``serve`` namespace
    (listed from the GCS: no dashboard needed)."""
    import ray

    prefix = f"SERVE_REPLICA::{app}#{deployment}#"
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)]
    for name in names:
        ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
    return len(names)
