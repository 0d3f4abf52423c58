"""Batch jobs against the upload route: the same images, the same service, one run.

    python -m bench.jobs [--images 100] [--size 320x240] [--clients 4] [--url URL] [--json F]

Submits N distinct JPEGs as one job and times it from the POST to ``completed`` (and the POST alone,
the time to 202), then uploads the same N images through ``POST /api/images/upload`` one after another
(a script's loop) and with ``--clients`` threads. Each phase uses fresh images (another seed), so none
finds the previous phase's objects. Without ``--url`` it starts the service (``bench.service.Service``).
"""

from __future__ import annotations

import argparse
import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from bench.machine import describe, header, table, write_json
from bench.service import Service


def images(count: int, width: int, height: int, seed: int) -> list[tuple[str, bytes]]:
    """Distinct photographic-ish JPEGs (smooth noise), so content-addressed keys never collide."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        out.append((f"b{seed}-{i}.jpg", buffer.getvalue()))
    return out


def run_job(client: httpx.Client, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    started = time.perf_counter()
    response = client.post("/api/jobs", files=[("images", (n, d, "image/jpeg")) for n, d in files])
    accepted = time.perf_counter() - started
    response.raise_for_status()
    job_id = response.json()["job_id"]
    while (job := client.get(f"/api/jobs/{job_id}").json())["status"] not in ("completed", "failed", "cancelled"):
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    return {"phase": "job", "seconds": seconds, "images_per_s": len(files) / seconds,
            "to_202_ms": accepted * 1000, "failed": job["failed"]}  # fmt: skip


def run_sync(client: httpx.Client, files: list[tuple[str, bytes]], clients: int) -> dict[str, Any]:
    def one(file: tuple[str, bytes]) -> int:
        return client.post("/api/images/upload", files={"image": (file[0], file[1], "image/jpeg")}).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(one, files))
    seconds = time.perf_counter() - started
    failed = sum(s != 200 for s in statuses)
    return {"phase": f"upload route, {clients} client(s)", "seconds": seconds,
            "images_per_s": len(files) / seconds, "to_202_ms": None, "failed": failed}  # fmt: skip


def measure(url: str, count: int, width: int, height: int, clients: int) -> list[dict[str, Any]]:
    with httpx.Client(base_url=url, timeout=600) as client:
        client.post("/api/images/upload", files={"image": ("warm.jpg", images(1, width, height, 99)[0][1])})
        rows = [run_job(client, images(count, width, height, seed=1))]
        rows.append(run_sync(client, images(count, width, height, seed=2), 1))
        rows.append(run_sync(client, images(count, width, height, seed=3), clients))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--url", help="a running service (default: start one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    info = describe()
    print(header(info))
    if args.url:
        rows = measure(args.url, args.images, width, height, args.clients)
    else:
        with Service() as service:
            rows = measure(service.url, args.images, width, height, args.clients)
    job = rows[0]["images_per_s"]
    for row in rows:
        row["job_over_this"] = job / row["images_per_s"]
    print(table(rows, ["phase", "seconds", "images_per_s", "to_202_ms", "failed", "job_over_this"]))
    write_json(args.json, {"machine": info, "images": args.images, "size": args.size, "rows": rows})


if __name__ == "__main__":
    main()
