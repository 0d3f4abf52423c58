"""What a client sees, black-box: 4K uploads/s with threads of Python ``requests``, and the time spent
outside the model for 1080p uploads at ×2 and ×4.

    python -m bench.client [--threads 8] [--seconds 30] [--repeats 3] [--json F]
    python -m bench.client --url http://HOST:8000 --metrics http://HOST:METRICS_PORT/metrics

Without ``--url`` it starts the service as a user does (``ray start`` with Prometheus metrics, then
``serve run serve_config.yaml``, local storage) and stops it at the end; with ``--url`` it measures a
service that is already running (``--metrics``: Ray's Prometheus endpoint, for the model's own time).

1. No-upscale path: ``--threads`` threads, each a ``requests.Session`` posting a 4K JPEG (3840×2160,
   scikit-image's motorcycle, quality 90) in a loop for ``--seconds``: uploads/s, p50/p99, and when the
   service runs on this machine the CPU seconds per upload of each of its processes (``/proc``).
2. Upscaling path: a 1080p JPEG uploaded alone with ``model=vcsr-m-x2`` and with ``model=vcsr-m-x4``,
   ``--repeats`` times each after one warm-up, every upload a new file (the JPEG numbered in a comment
   segment, so none takes the idempotent path of a repeated upload). The model's time is the service's
   ``ray_upscaler_forward_seconds_total`` over the upload (read once the counters settle); outside the
   model is the client's time minus that. Medians of the repeats, and outside / model.
"""

from __future__ import annotations

import argparse
import re
import statistics
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import requests

from bench.machine import describe, header, table, write_json
from bench.service import Service, cores_used, cpu_seconds, jpeg_of

FORWARD = "ray_upscaler_forward_seconds_total"


def post(session: requests.Session, url: str, data: bytes, model: str | None = None) -> dict[str, Any]:
    response = session.post(
        url + "/api/images/upload",
        files={"image": ("upload.jpg", data, "image/jpeg")},
        data={"model": model} if model else None,
        timeout=900,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()["result"]
    return result


def numbered(jpeg: bytes, n: int) -> bytes:
    """``jpeg`` with a comment segment (COM) holding ``n`` after its SOI marker: the same pixels in other
    bytes, so each upload is a new one with its own key. Sending the same bytes again is the idempotent
    path instead, whose store reads the stored object back to compare it (~50 ms for a ×4 output)."""
    text = f"upload {n}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def stored_as_uploaded(response: requests.Response) -> bool:
    return response.ok and response.json()["result"]["folder"] == "good_quality"


def no_upscale(url: str, data: bytes, threads: int, seconds: float) -> dict[str, Any]:
    """``threads`` clients posting ``data`` back to back for ``seconds``: rate, latencies, CPU per upload."""
    return hammer(url, data, threads, seconds, stored_as_uploaded)


def hammer(
    url: str, data: bytes, threads: int, seconds: float, expected: Callable[[requests.Response], bool]
) -> dict[str, Any]:
    """``threads`` clients posting ``data`` as an upload back to back for ``seconds``; an answer that is
    not ``expected`` (or none) counts as an error. Rate, latencies, and CPU per upload of each process."""
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds

    def client() -> None:
        with requests.Session() as session:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = session.post(
                        url + "/api/images/upload", files={"image": ("upload.jpg", data, "image/jpeg")}, timeout=900
                    )
                    errors[0] += not expected(response)
                except requests.RequestException:
                    errors[0] += 1
                latencies.append(time.perf_counter() - started)

    cpu_before, started = cpu_seconds(), time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    used = cores_used(cpu_before, cpu_seconds(), elapsed)
    done = len(latencies)
    return {
        "threads": threads,
        "uploads": done,
        "uploads_per_s": done / elapsed,
        "p50_s": float(np.percentile(latencies, 50)) if latencies else None,
        "p99_s": float(np.percentile(latencies, 99)) if latencies else None,
        "errors": errors[0],
        "cpu_ms_per_upload": {role: cores * elapsed / max(done, 1) * 1e3 for role, cores in used.items()},
    }


TILES = "ray_upscaler_tiles_total"


def counters(metrics_url: str) -> dict[str, float]:
    """The model's forward seconds and tiles run so far, from one scrape (exported together)."""
    text = requests.get(metrics_url, timeout=10).text
    return {
        name: sum(float(m[1]) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", text, re.M))
        for name in (FORWARD, TILES)
    }


def counters_after(metrics_url: str, tiles: float, timeout: float = 90.0) -> dict[str, float]:
    """The counters once Ray has exported at least ``tiles`` tiles. Ray's agent exports every few
    seconds, so a counter that has not moved for a while may still miss the last pass: waiting for
    it to stand still under-counted one of a 1080p ×2 upload's four tiles (3.2 s of 4.4)."""
    deadline = time.monotonic() + timeout
    while (reading := counters(metrics_url))[TILES] < tiles:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{TILES} stayed at {reading[TILES]:g} < {tiles:g} for {timeout:g} s")
        time.sleep(0.5)
    return reading


def outside_the_model(url: str, metrics_url: str, data: bytes, model: str, repeats: int) -> dict[str, Any]:
    """One upload at a time, each a new image (``numbered``): client seconds, the model's forward
    seconds, and the rest."""
    rows = []
    with requests.Session() as session:
        exported = counters(metrics_url)[TILES]  # every earlier upload's tiles were waited for
        warm = post(session, url, numbered(data, 0), model)  # warm-up: the model loaded, its tile shapes seen
        before = counters_after(metrics_url, exported + warm["tiles"])
        for n in range(1, repeats + 1):
            started = time.perf_counter()
            result = post(session, url, numbered(data, n), model)
            client = time.perf_counter() - started
            after = counters_after(metrics_url, before[TILES] + result["tiles"])
            model_s, before = after[FORWARD] - before[FORWARD], after
            timings = result.get("timings_ms", {})
            rows.append(
                {
                    "client_s": client,
                    "model_s": model_s,
                    # the upscaler's tiling, batching and paste around the forward passes
                    "tiling_s": timings.get("model", 0) / 1e3 - model_s,
                    "encode_s": timings.get("encode", 0) / 1e3,
                    "store_s": timings.get("store", 0) / 1e3,
                }
            )
    client_s = statistics.median(r["client_s"] for r in rows)
    model_s = statistics.median(r["model_s"] for r in rows)
    outside = statistics.median(r["client_s"] - r["model_s"] for r in rows)
    return {
        "model": model,
        "output": f"{result['output_width']}x{result['output_height']}",
        "client_s": client_s,
        "model_s": model_s,
        "outside_s": outside,
        "outside_over_model": outside / model_s if model_s else None,
        **{part: statistics.median(r[part] for r in rows) for part in ("tiling_s", "encode_s", "store_s")},
        "runs": rows,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running service (default: start one)")
    parser.add_argument("--metrics", help="its Ray Prometheus endpoint, e.g. http://127.0.0.1:8080/metrics")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["vcsr-m-x2", "vcsr-m-x4"])
    parser.add_argument("--skip-upscale", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    info = describe()
    print(header(info), flush=True)
    uhd, hd = jpeg_of(3840, 2160, "motorcycle_left.png"), jpeg_of(1920, 1080, "astronaut.png")
    report: dict[str, Any] = {"machine": info, "settings": vars(args) | {"json": str(args.json)}}
    with ExitStack() as stack:
        url, metrics = args.url, args.metrics
        if url is None:
            service = stack.enter_context(Service())
            url, metrics = service.url, f"http://127.0.0.1:{service.metrics_port}/metrics"
        with requests.Session() as session:
            post(session, url, uhd)  # warm-up
        report["no_upscale"] = no_upscale(url, uhd, args.threads, args.seconds)
        r = report["no_upscale"]
        print(f"4K no-upscale, {args.threads} threads of requests: {r['uploads_per_s']:.1f} uploads/s, "
              f"p50 {r['p50_s']:.3f} s, p99 {r['p99_s']:.3f} s, errors {r['errors']}")  # fmt: skip
        cpu = [{"process": k, "cpu ms / upload": v} for k, v in r["cpu_ms_per_upload"].items()]
        print(table(cpu, ["process", "cpu ms / upload"]), flush=True)
        if not args.skip_upscale:
            if metrics is None:
                raise SystemExit("--metrics is needed with --url to split the model's time from the rest")
            report["upscale"] = [outside_the_model(url, metrics, hd, m, args.repeats) for m in args.models]
            columns = [
                "model",
                "output",
                "client_s",
                "model_s",
                "outside_s",
                "outside_over_model",
                "tiling_s",
                "encode_s",
                "store_s",
            ]
            print(table(report["upscale"], columns), flush=True)
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
