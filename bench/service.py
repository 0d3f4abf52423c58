"""Shared by the service benchmarks: the real service in child processes, its metrics, load generators.

``Service`` starts a Ray head (``ray start``, Prometheus metrics on a known port) and the app exactly
as a user does (``python -m serve_app serve`` → ``serve run serve_config.yaml``), waits for
``/api/health``, and stops both. ``closed_loop`` keeps N clients busy for T seconds; ``open_loop``
offers uploads at a fixed rate whatever the service's answer time. Both return one ``Sample`` per
upload. Test images are scikit-image's bundled photographs resized, encoded once per run.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from bench.images import photo_dir
from bench.s3servers import free_ports
from configs.ray_env import RAY_ENV

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def photo(name: str = "astronaut.png") -> Image.Image:
    folder = photo_dir()
    if folder is None:
        raise SystemExit("the benchmarks use scikit-image's photographs: pip install -e '.[dev]'")
    with Image.open(folder / name) as image:
        return image.convert("RGB")


def jpeg_of(width: int, height: int, source: str = "astronaut.png", quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    photo(source).resize((width, height), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@dataclass(frozen=True)
class Upload:
    label: str
    data: bytes
    width: int
    height: int


def upload_of(label: str, width: int, height: int, source: str = "astronaut.png") -> Upload:
    return Upload(label, jpeg_of(width, height, source), width, height)


@dataclass(frozen=True)
class Sample:
    label: str
    status: int
    seconds: float
    folder: str | None
    megapixels: float
    finished: float


class Service:
    """``ray start --head`` + ``python -m serve_app serve`` with ``env`` over the current environment."""

    def __init__(self, env: dict[str, str] | None = None, config: Path | None = None) -> None:
        self.port, self.metrics_port, self.gcs_port = free_ports(3)
        self.tmp = Path(tempfile.mkdtemp(prefix="vcs-bench-"))
        self.env = {
            **RAY_ENV,  # as the launcher and the image start Ray
            **os.environ,
            "RAY_AUTH_MODE": "disabled",
            "PORT": str(self.port),
            "STORAGE_DIR": str(self.tmp / "storage"),
            "RAY_ADDRESS": f"127.0.0.1:{self.gcs_port}",
            **(env or {}),
        }
        self.config = config or REPO / "serve_config.yaml"
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.ray: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Service:
        # ``ray start --block`` in a session of its own: every Ray process it starts shares its process
        # group, so stopping it stops this cluster only (``ray stop`` would stop every Ray on the machine).
        # Its own temp dir keeps it from becoming the machine's default cluster (/tmp/ray/ray_current_cluster),
        # which a ``ray.init()`` elsewhere on the machine would otherwise join.
        ray_log = open(self.tmp / "ray.log", "wb")
        self.ray = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--block", "--port", str(self.gcs_port), "--node-ip-address",
             "127.0.0.1", "--metrics-export-port", str(self.metrics_port), "--include-dashboard", "false",
             "--disable-usage-stats", "--temp-dir", str(self.tmp / "ray")],
            env=self.env, stdout=ray_log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._wait_for(lambda: b"Ray runtime started" in (self.tmp / "ray.log").read_bytes(), self.ray, "ray.log")
        log = open(self.tmp / "serve.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serve_app", "serve", "--config", str(self.config)],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._wait_for(self._healthy, self.process, "serve.log")
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _wait_for(self, ready: Any, process: subprocess.Popen[bytes], log: str, seconds: float = 300) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (self.tmp / log).read_text(errors="replace")[-3000:]
                self.__exit__()
                raise RuntimeError(f"the service exited; the end of {log}:\n{tail}")
            if ready():
                return
            time.sleep(0.5)
        self.__exit__()
        raise TimeoutError(f"the service was not ready in {seconds:g} s: see {self.tmp / log}")

    def __exit__(self, *exc: object) -> None:
        for process, first in ((self.process, signal.SIGINT), (self.ray, signal.SIGTERM)):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, first)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def pids(self, pattern: str) -> list[int]:
        """Processes of this service whose command line matches ``pattern`` (e.g. ``ServeReplica:.*:Upscaler``)."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                session = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
            except (OSError, ValueError, IndexError):
                continue
            if self.ray is not None and session == self.ray.pid and re.search(pattern, command):
                found.append(int(entry.name))
        return found

    def metrics(self) -> dict[str, float]:
        """Ray's Prometheus endpoint, summed over label sets: ``{metric_name: value}``."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        totals: dict[str, float] = {}
        for line in text.splitlines():
            match = re.match(r"^(ray_upscaler_\w+|ray_serve_\w+)(?:\{[^}]*\})? ([0-9.eE+-]+)$", line)
            if match:
                totals[match[1]] = totals.get(match[1], 0.0) + float(match[2])
        return totals

    def settled_metrics(self, wait: float = 12.0) -> dict[str, float]:
        """Metrics after the agent's next report (Ray exports them every few seconds)."""
        time.sleep(wait)
        return self.metrics()


ROLES = (
    ("Upscaler replica", re.compile(r"ServeReplica:[^:]+:Upscaler")),
    ("Ingress replica", re.compile(r"ServeReplica:[^:]+:Ingress")),
    ("Storage replica", re.compile(r"ServeReplica:[^:]+:Storage")),
    ("HTTP proxy", re.compile(r"ray::ProxyActor")),
    ("Serve controller", re.compile(r"ray::ServeController")),
    ("Ray control plane (GCS, raylet, agents)", re.compile(r"gcs_server|raylet|ray/dashboard|ray/_private|ray::")),
)


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by the processes on this machine, summed by role
    (Linux ``/proc``): the service's parts, Ray's own processes, this process (the load generator)
    and everything else."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if int(entry.name) == os.getpid():
            role = "load generator (this process)"
        else:
            role = next((name for name, pattern in ROLES if pattern.search(command)), "other processes")
        totals[role] = totals.get(role, 0.0) + seconds
    return totals


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores each role kept busy on average between two ``cpu_seconds`` readings, busiest first."""
    used = {role: (after[role] - before.get(role, 0.0)) / seconds for role in after}
    return dict(sorted(used.items(), key=lambda item: -item[1]))


async def _send(client: httpx.AsyncClient, item: Upload) -> Sample:
    started = time.perf_counter()
    try:
        response = await client.post(
            "/api/images/upload", files={"image": (f"{item.label}.jpg", item.data, "image/jpeg")}
        )
        status = response.status_code
        folder = response.json().get("result", {}).get("folder") if status == 200 else None
    except httpx.HTTPError:
        status, folder = 0, None
    done = time.perf_counter()
    return Sample(item.label, status, done - started, folder, item.width * item.height / 1e6, done)


async def send_once(url: str, items: list[Upload]) -> list[Sample]:
    """Each upload once, one after another (warm-up: every image shape reaches the model once)."""
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        return [await _send(client, item) for item in items]


async def closed_loop(url: str, mix: list[Upload], clients: int, seconds: float) -> list[Sample]:
    """``clients`` clients, each sending the next upload of the mix as soon as its last one is answered."""
    samples: list[Sample] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def worker(offset: int) -> None:
            i = offset
            while time.perf_counter() < deadline:
                samples.append(await _send(client, mix[i % len(mix)]))
                i += 1

        await asyncio.gather(*(worker(k * len(mix) // clients) for k in range(clients)))
    return samples


async def open_loop(url: str, mix: list[Upload], rate: float, seconds: float) -> list[Sample]:
    """Uploads started at ``rate`` per second (evenly spaced) for ``seconds``, answered or not."""
    count = max(1, round(rate * seconds))
    limits = httpx.Limits(max_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        start = time.perf_counter()

        async def one(i: int) -> Sample:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            return await _send(client, mix[i % len(mix)])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def summarise(samples: list[Sample], seconds: float) -> dict[str, Any]:
    """Throughput over the window and latency percentiles, overall and per upload kind."""
    ok = [s for s in samples if s.status == 200]

    def stats(group: list[Sample]) -> dict[str, Any]:
        latencies = np.array([s.seconds for s in group]) if group else np.array([np.nan])
        upscaled = [s for s in group if s.folder == "upscaled"]
        return {
            "uploads": len(group),
            "uploads_per_s": len(group) / seconds,
            "upscaled_mp_per_s": sum(s.megapixels for s in upscaled) / seconds,
            "p50_s": float(np.percentile(latencies, 50)),
            "p95_s": float(np.percentile(latencies, 95)),
            "p99_s": float(np.percentile(latencies, 99)),
        }

    return {
        **stats(ok),
        "errors": len(samples) - len(ok),
        "by_kind": {label: stats([s for s in ok if s.label == label]) for label in sorted({s.label for s in ok})},
    }
