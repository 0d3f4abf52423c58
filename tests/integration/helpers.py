"""Small helpers the app tests share."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import numpy as np
from PIL import Image


def upload(
    client: httpx.Client, data: bytes, filename: str = "photo.jpg", content_type: str = "image/jpeg"
) -> httpx.Response:
    return client.post("/api/images/upload", files={"image": (filename, data, content_type)})


def stored_path(storage: Path, result: dict[str, Any]) -> Path:
    """The file local storage keeps a result in: its ``s3_url`` is ``local:<key>``, relative to
    STORAGE_DIR (the service never shows the machine's absolute path)."""
    url = str(result["s3_url"])
    assert url.startswith("local:") and unquote(url.removeprefix("local:")) == result["key"], url
    return storage / str(result["key"])


def stored_bytes(client: httpx.Client, result: dict[str, Any]) -> bytes:
    """A result's stored bytes, fetched as a client would: from its ``download_url``."""
    response = client.get(str(result["download_url"]))
    assert response.status_code == 200, response.text
    return response.content


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".health-"))


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(open_image(data))


def submit_job(client: httpx.Client, files: list[tuple[str, bytes]], **form: str) -> httpx.Response:
    parts = [("images", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/api/jobs", files=parts, data=form)


def wait_for_job(
    client: httpx.Client, job_id: str, timeout_s: float = 120, until: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Poll until the job has ended (or reached one of ``until``)."""
    ended = until or ("completed", "failed", "cancelled")
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ended or time.monotonic() > deadline:
            return job
        time.sleep(0.25)


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
