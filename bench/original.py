"""The service against the original design: one new Python process per upload.

    python -m bench.original [--seconds 20] [--sizes 256x256 512x512 1920x1080] [--json F]

The original README ran a script per image: start Python, import torch, load the model, upscale the
one image, write it, exit. That is reproduced here with the same model, precision and tile size as
the service (so only the architecture differs), run back to back with 1 and with as many parallel
processes as there are cores (the better of the two counts). The service gets the same uploads from
4 concurrent HTTP clients. Printed: uploads/s of each and the ratio, per size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.machine import describe, header, table, write_json
from bench.service import Service, closed_loop, send_once, summarise, upload_of

ONE_SHOT = """
import sys, numpy as np, torch
from PIL import Image
from configs.settings import load_settings
from models.engine import keep_large_allocations, resolve_device
from models.precision import served_engine
from models.registry import default_model_name
settings = load_settings()
keep_large_allocations()
engine = served_engine(default_model_name(settings.scales[0]), resolve_device(settings.device), settings.precision)
image = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
Image.fromarray(engine.upscale_image(image)).save(sys.argv[2], compress_level=settings.png_compress_level)
"""


def original(data: bytes, seconds: float, parallel: int) -> dict[str, float]:
    """Images per second of back-to-back one-shot processes, ``parallel`` at a time."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.jpg"
        source.write_bytes(data)

        def one(i: int) -> float:
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", ONE_SHOT, str(source), str(Path(tmp) / f"out-{i}.png")],
                check=True, cwd=Path(__file__).resolve().parent.parent,
            )  # fmt: skip
            return time.perf_counter() - started

        latencies: list[float] = []
        started, i = time.perf_counter(), 0
        with ThreadPoolExecutor(parallel) as pool:
            while time.perf_counter() - started < seconds or not latencies:
                latencies += list(pool.map(one, range(i, i + parallel)))
                i += parallel
        elapsed = time.perf_counter() - started
    return {"parallel": parallel, "images": len(latencies), "uploads_per_s": len(latencies) / elapsed,
            "mean_latency_s": sum(latencies) / len(latencies)}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sizes", nargs="+", default=["256x256", "512x512", "1920x1080"])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    info = describe()
    print(header(info), flush=True)
    uploads = {}
    for size in args.sizes:
        width, height = (int(n) for n in size.split("x"))
        uploads[size] = upload_of(size, width, height, "astronaut.png")

    rows: list[dict[str, Any]] = []
    with Service() as service:
        asyncio.run(send_once(service.url, list(uploads.values())))
        for size, item in uploads.items():
            started = time.perf_counter()
            samples = asyncio.run(closed_loop(service.url, [item], args.clients, args.seconds))
            # First upload sent → last answer received: the uploads still in flight at the deadline
            # are counted, so is the time they take.
            result = summarise(samples, time.perf_counter() - started)
            rows.append(
                {"size": size, "service_uploads_per_s": result["uploads_per_s"], "service_p50_s": result["p50_s"]}
            )
            print(f"service {size}: {result['uploads_per_s']:.2f} uploads/s, p50 {result['p50_s']:.2f} s", flush=True)
    for row, item in zip(rows, uploads.values(), strict=True):
        runs = [original(item.data, args.seconds, p) for p in sorted({1, len(os.sched_getaffinity(0))})]
        best = max(runs, key=lambda r: r["uploads_per_s"])
        row.update(
            original_uploads_per_s=best["uploads_per_s"],
            original_parallel=best["parallel"],
            original_latency_s=best["mean_latency_s"],
            ratio=row["service_uploads_per_s"] / best["uploads_per_s"],
            original_runs=runs,
        )
        print(f"original {row['size']}: {best['uploads_per_s']:.3f} uploads/s ({best['parallel']} at a time), "
              f"ratio {row['ratio']:.1f}×", flush=True)  # fmt: skip
    print()
    print(table(rows, ["size", "service_uploads_per_s", "original_uploads_per_s", "original_parallel", "ratio"]))
    report = {"machine": info, "settings": vars(args) | {"json": str(args.json)}, "rows": rows}
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
