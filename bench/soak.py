"""Soak: the real service (``serve run``) held at a share of its saturation for a long while, with bad
inputs mixed in — each replica's memory over time, latency drift, errors and lost uploads.

    python -m bench.soak [--minutes 10] [--load 0.7] [--out docs/bench/soak.json] [--plot docs/bench/soak.png]

Saturation is measured first (a closed loop of clients on the same mix, ``--saturation-s``); the soak
then starts uploads at ``--load`` × that rate, evenly spaced, whatever the answers (an open loop). Every
``--sample-s`` it records the resident memory of each Serve role's processes and the p50/p99 of the
uploads answered in that window. At the end every 200's object is looked for in storage: a missing or
short one is a lost upload. The service runs in its own local Ray (``serve run --address local``),
stopped with SIGTERM, so nothing else on the machine is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import yaml

from bench import images
from bench.machine import describe
from bench.s3servers import free_ports
from bench.service import REPO, ROLES, Upload, closed_loop, upload_of

BAD = [  # refused inputs (4xx), a tenth of the traffic
    Upload("bad-truncated", images.truncated(images.jpeg(320, 240)), 320, 240),
    Upload("bad-gif", images.gif(), 32, 32),
    Upload("bad-text", b"not an image at all", 0, 0),
    Upload("bad-scan-bomb", images.progressive_jpeg_with_extra_scans(5_000), 64, 48),
]


def mix() -> list[Upload]:
    good = [upload_of("small-480x320", 480, 320), upload_of("medium-960x540", 960, 540), upload_of("4k", 3840, 2160)]
    return [*good * 3, *good[:1] * 3, *BAD[: 1 + len(good) // 3]]  # ~10 % refused inputs


def start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    config = yaml.safe_load((REPO / "serve_config.yaml").read_text())
    config["http_options"]["port"] = port
    (tmp / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "STORAGE_DIR": str(tmp / "storage")}
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("serve")), "run", str(tmp / "config.yaml"), "--app-dir", str(REPO),
         "--address", "local"],
        cwd=tmp, env=env, stdout=open(tmp / "serve.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("serve run exited; see its serve.log")
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the service was not healthy in time")


def rss_by_role(root: int) -> dict[str, float]:
    """Resident MiB of the Serve replicas and proxy under ``root`` (our ``serve run``: its local Ray's
    processes are its descendants; other Rays on the machine are not counted), by role."""
    totals: dict[str, float] = {}
    for process in psutil.Process(root).children(recursive=True):
        try:
            command, rss = " ".join(process.cmdline()), process.memory_info().rss
        except psutil.Error:  # ended meanwhile
            continue
        role = next((name for name, pattern in ROLES[:4] if pattern.search(command)), None)
        if role:
            totals[role] = totals.get(role, 0.0) + rss / 2**20
    return {k: round(v, 1) for k, v in sorted(totals.items())}


async def soak(
    url: str, uploads: list[Upload], rate: float, seconds: float, sample_s: float, root: int
) -> dict[str, Any]:
    results: list[tuple[float, float, int, dict[str, Any]]] = []  # (finished, seconds, status, body)
    samples: list[dict[str, Any]] = []
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            item, began = uploads[i % len(uploads)], time.perf_counter()
            files = {"image": (f"{item.label}-{i}.jpg", item.data, "image/jpeg")}
            try:
                response = await client.post("/api/images/upload", files=files)
                status = response.status_code
                body = (
                    response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
                )
            except httpx.HTTPError:
                status, body = 0, {}
            results.append((time.perf_counter() - start, time.perf_counter() - began, status, body))

        async def sampler() -> None:
            last = 0.0
            while time.perf_counter() - start < seconds + 5:
                await asyncio.sleep(sample_s)
                now = time.perf_counter() - start
                window = [r[1] for r in results if last <= r[0] < now and r[2] == 200]
                samples.append({"t_s": round(now, 1), "rss_mib": await asyncio.to_thread(rss_by_role, root),
                                "answered": len(window),
                                "p50_s": round(float(np.percentile(window, 50)), 2) if window else None,
                                "p99_s": round(float(np.percentile(window, 99)), 2) if window else None})  # fmt: skip
                last = now

        await asyncio.gather(sampler(), *(one(i) for i in range(round(rate * seconds))))
    return {"results": results, "samples": samples}


def lost(results: list[tuple[float, float, int, dict[str, Any]]], storage: Path) -> int:
    missing = 0
    for _, _, status, body in results:
        if status == 200:
            path = storage / body["result"]["key"]  # s3_url is local:<key>, relative to STORAGE_DIR
            if not path.is_file() or path.stat().st_size != body["result"]["size_bytes"]:
                missing += 1
    return missing


def plot(samples: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (memory, latency) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    minutes = [s["t_s"] / 60 for s in samples]
    for role in sorted({r for s in samples for r in s["rss_mib"]}):
        memory.plot(minutes, [s["rss_mib"].get(role) for s in samples], label=role)
    memory.set_ylabel("resident MiB")
    memory.legend(fontsize=8)
    latency.plot(minutes, [s["p50_s"] for s in samples], label="p50")
    latency.plot(minutes, [s["p99_s"] for s in samples], label="p99")
    latency.set_ylabel("seconds (200s answered in the window)")
    latency.set_xlabel("minutes")
    latency.legend(fontsize=8)
    fig.suptitle("Soak at 70 % of saturation, bad inputs mixed in")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--load", type=float, default=0.7)
    parser.add_argument("--saturation-s", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--sample-s", type=float, default=10)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    uploads = mix()
    tmp = Path(tempfile.mkdtemp(prefix="vcs-soak-"))
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    process = start(tmp, port)
    try:
        wait_healthy(url, process)
        warm = asyncio.run(closed_loop(url, uploads, args.clients, args.saturation_s))
        saturation = sum(1 for s in warm if s.status == 200) / args.saturation_s  # answered uploads per second
        run = asyncio.run(soak(url, uploads, args.load * saturation, args.minutes * 60, args.sample_s, process.pid))
        results, samples = run["results"], run["samples"]
        missing = lost(results, tmp / "storage")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(120)
        shutil.rmtree(tmp, ignore_errors=True)
    statuses = [r[2] for r in results]
    report = {
        "machine": describe(),
        "minutes": args.minutes,
        "saturation_uploads_per_s": round(saturation, 3),
        "offered_uploads_per_s": round(args.load * saturation, 3),
        "uploads": len(results),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "refused_inputs_sent": sum(1 for i in range(len(results)) if uploads[i % len(uploads)].label.startswith("bad")),
        "lost_uploads": missing,
        "samples": samples,
    }  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    if args.plot:
        plot(samples, args.plot)
    print(json.dumps({k: v for k, v in report.items() if k not in ("samples", "machine")}, indent=1))
    return report


if __name__ == "__main__":
    main()
