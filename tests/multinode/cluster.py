"""Helpers for the multi-node tests: the cluster Serve config with test overrides, deploying a config as
`serve deploy` does, replicas per node, requests served per replica, and a bounded load step."""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from PIL import Image
from ray import serve
from ray.serve.context import _get_global_client
from ray.serve.schema import ServeDeploySchema
from ray.util.state import list_actors

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_CONFIG = ROOT / "configs" / "serve_config.cluster.yaml"
APP = "upscaler"
CALL = re.compile(r" -- CALL upscale (\S+) ")
# What the Ingress's router says when it could not reach a replica (Ray 2.60, request_router.py).
ROUTER_TROUBLE = re.compile(r"Failed to (?:get|fetch) queue length")


def cluster_config(port: int, settings: dict[str, Any], autoscaling: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """configs/serve_config.cluster.yaml on loopback ``port`` with extra ``settings`` and each deployment's
    ``autoscaling_config`` updated from ``autoscaling`` (faster delays, fewer replicas for two cores)."""
    document: dict[str, Any] = yaml.safe_load(CLUSTER_CONFIG.read_text())
    document["http_options"] |= {"host": "127.0.0.1", "port": port}
    (app,) = document["applications"]
    app["args"]["settings"] |= settings
    for deployment in app["deployments"]:
        deployment["autoscaling_config"] |= autoscaling.get(deployment["name"], {})
    return document


def deploy(document: dict[str, Any], timeout_s: float = 300) -> None:
    """What `serve deploy` asks the controller to do, then wait until the app runs."""
    _get_global_client().deploy_apps(ServeDeploySchema.model_validate(document))
    wait_for(lambda: app_status() == "RUNNING", timeout_s, "the app to run")


def app_status() -> str | None:
    app = serve.status().applications.get(APP)
    return str(app.status.value) if app else None


def running_replicas(deployment: str) -> int:
    app = serve.status().applications.get(APP)
    if app is None or deployment not in app.deployments:
        return 0
    return int(app.deployments[deployment].replica_states.get("RUNNING", 0))


def replica_nodes(deployment: str) -> dict[str, str]:
    """Replica id → node id of every live replica of ``deployment``."""
    actors = list_actors(
        filters=[("class_name", "=", f"ServeReplica:{APP}:{deployment}"), ("state", "=", "ALIVE")], detail=True
    )
    return {str(a.name).rsplit("#", 1)[-1]: str(a.node_id) for a in actors}


def calls_per_replica(logs: Path) -> dict[str, Counter[str]]:
    """Upscale calls each Upscaler replica answered, by outcome (OK, ERROR, ...), from Serve's
    per-replica access logs."""
    calls: dict[str, Counter[str]] = {}
    for log in logs.glob("**/logs/serve/replica_upscaler_Upscaler_*.log"):
        outcomes = calls.setdefault(log.stem.rsplit("_", 1)[-1], Counter())
        outcomes.update(m.group(1) for m in map(CALL.search, log.read_text(errors="replace").splitlines()) if m)
    return calls


def served_per_replica(logs: Path) -> Counter[str]:
    """Upscale calls each Upscaler replica answered successfully."""
    return Counter({replica: outcomes["OK"] for replica, outcomes in calls_per_replica(logs).items()})


def router_view(logs: Path) -> str:
    """What the Ingress's router logged about the Upscaler: how often it could not learn a replica's
    queue length in time, and the last replica set it was given."""
    text = "".join(log.read_text(errors="replace") for log in logs.glob("**/logs/serve/replica_upscaler_Ingress_*.log"))
    updates = re.findall(r"Got updated replicas for Deployment\(name='Upscaler'.*", text)
    return f"{len(ROUTER_TROUBLE.findall(text))} queue-length misses; last update: {updates[-1] if updates else None}"


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def small_png(seed: int, size: int = 192) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@dataclass
class LoadStep:
    """``workers`` clients uploading distinct small images back to back until stopped (at most
    ``max_requests`` in all)."""

    url: str
    workers: int = 6
    max_requests: int = 2000
    results: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _pool: ThreadPoolExecutor | None = None
    _sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next(self) -> int | None:
        with self._lock:
            if self._stop.is_set() or self._sent >= self.max_requests:
                return None
            self._sent += 1
            return self._sent

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while (n := self._next()) is not None:
                try:
                    response = client.post("/api/images/upload", files={"image": (f"load-{n}.png", small_png(n))})
                    body = response.json() if response.headers.get("content-type") == "application/json" else {}
                    outcome = (response.status_code, body)
                except httpx.HTTPError as exc:  # recorded, so the test reports it instead of losing it
                    outcome = (0, {"error": f"{type(exc).__name__}: {exc}"})
                with self._lock:
                    self.results.append(outcome)

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.workers)
        for _ in range(self.workers):
            self._pool.submit(self._client)

    def stop(self) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
