"""Small helpers the app tests share."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

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
