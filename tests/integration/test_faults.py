"""Faults under load on the real app: an upscaler replica killed (every request answered: upscaled, or
the original kept), a storage replica killed (puts are idempotent and sent again: no 5xx), each killed
only once it holds requests (asked of the replica itself, not guessed from a delay), and
overload at several times what the service can take (only 200 / 503 with Retry-After, health 200,
every 200 stored, nothing partial). Figures (latencies, replica memory) go to the log, not asserts."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from bench import images
from deployments.storage.spool import sweep_stale_tmp
from tests.integration.conftest import deployed
from tests.integration.helpers import stored_files, stored_path

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
def client(serve_url: str, storage: Path) -> Iterator[httpx.Client]:
    # One client address on purpose (the overload is the service's): it may take every upload slot.
    with deployed(serve_url, storage_dir=str(storage), max_uploads_per_client=100) as c:
        yield c


def replica_rss_mb(deployment: str) -> float:
    """Resident memory of the replicas of ``deployment`` in this test session's Ray (its processes are
    this process's descendants; other Rays on the machine are not counted)."""
    total = 0
    for process in psutil.Process().children(recursive=True):
        try:
            if f"ServeReplica:upscaler:{deployment}" in " ".join(process.cmdline()):
                total += process.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def kill_when_busy(deployment: str, timeout_s: float = 60.0, app: str = "upscaler") -> int:
    """Wait until the replicas of ``deployment`` hold at least one request, then ``ray.kill`` every one
    (Serve starts new ones); returns the requests they held just before (0: they never held one in
    time, and none was killed). Replicas are named actors ``SERVE_REPLICA::<app>#<deployment>#<id>`` in
    the ``serve`` namespace; each answers ``get_num_ongoing_requests`` (Serve's own count)."""
    import ray

    prefix = f"SERVE_REPLICA::{app}#{deployment}#"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)]
        replicas = [ray.get_actor(name, namespace="serve") for name in names]
        held = sum(ray.get([r.get_num_ongoing_requests.remote() for r in replicas], timeout=10))
        if held:
            for replica in replicas:
                ray.kill(replica, no_restart=True)
            return int(held)
        time.sleep(0.005)  # polling the count, not waiting for an event
    return 0


async def _send(base_url: str, uploads: list[tuple[str, bytes]], kill: str | None, held: list[int]) -> list[Any]:
    async def one(http: httpx.AsyncClient, name: str, data: bytes) -> tuple[int, dict[str, Any], float, str | None]:
        started = time.monotonic()
        response = await http.post("/api/images/upload", files={"image": (name, data, "image/png")})
        # Serve's proxy answers its own backpressure 503 in plain text; every other answer is our JSON.
        is_json = response.headers.get("content-type", "").startswith("application/json")
        body = response.json() if is_json else {"text": response.text}
        return response.status_code, body, time.monotonic() - started, response.headers.get("retry-after")

    async def killer() -> None:
        assert kill is not None
        held.append(await asyncio.to_thread(kill_when_busy, kill))

    limits = httpx.Limits(max_connections=len(uploads) + 8)
    async with httpx.AsyncClient(base_url=base_url, timeout=300, limits=limits) as http:
        tasks = [one(http, name, data) for name, data in uploads]
        extra = [killer()] if kill else []
        results = await asyncio.gather(*tasks, *extra)
    return list(results[: len(uploads)])


def send(client: httpx.Client, uploads: list[tuple[str, bytes]], kill: str | None = None) -> list[Any]:
    """Send ``uploads`` at once; with ``kill``, that deployment's replicas are killed while they hold
    requests (asserted)."""
    held: list[int] = []
    results = asyncio.run(_send(str(client.base_url), uploads, kill, held))
    if kill:
        assert held and held[0] >= 1, f"no {kill} replica held a request while the uploads were in flight"
        log.warning("%s killed holding %d request(s)", kill, held[0])
    return results


def assert_stored_once(results: list[Any], storage: Path) -> None:
    """Every 200 is a complete object at its key. A storage replica killed mid-write may leave its
    hidden temporary file (never at a key); the next replica start sweeps it, as done here."""
    leftovers = list(storage.rglob("*.tmp"))
    assert all(p.name.startswith(".") for p in leftovers), "a temporary file was left at a visible name"
    assert sweep_stale_tmp(storage, ".*.tmp", older_than_s=-1) == len(leftovers)
    files = stored_files(storage)
    for status, body, _, _ in results:
        if status == 200:
            path = stored_path(storage, body["result"])
            assert path in files and path.stat().st_size == body["result"]["size_bytes"]


def wait_healthy(client: httpx.Client, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while (status := client.get("/api/health").status_code) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    return status


def test_an_upscaler_replica_killed_mid_load_loses_no_request(client: httpx.Client, storage: Path) -> None:
    uploads = [(f"kill-up-{i}.png", images.png(192, 160, seed=100 + i)) for i in range(12)]
    results = send(client, uploads, kill="Upscaler")
    statuses = [r[0] for r in results]
    assert statuses == [200] * len(uploads), [r[1] for r in results if r[0] != 200]
    folders = [r[1]["result"]["folder"] for r in results]
    assert set(folders) <= {"upscaled", "couldn't_upscale"}  # upscaled, or the original kept
    log.warning("upscaler killed: %s; slowest %.1f s", {f: folders.count(f) for f in set(folders)},
                max(r[2] for r in results))  # fmt: skip
    assert_stored_once(results, storage)
    assert wait_healthy(client) == 200


def test_a_storage_replica_killed_mid_load_gets_no_5xx(client: httpx.Client, storage: Path) -> None:
    uploads = [(f"kill-store-{i}.png", images.png(64, 48, seed=200 + i)) for i in range(24)]
    results = send(client, uploads, kill="Storage")
    assert [r[0] for r in results] == [200] * len(uploads), [r[1] for r in results if r[0] != 200]
    log.warning("storage killed: slowest %.1f s", max(r[2] for r in results))
    assert_stored_once(results, storage)
    assert wait_healthy(client) == 200


def test_overload_gets_only_200_or_503_with_retry_after(client: httpx.Client, storage: Path) -> None:
    # One ingress replica takes 24 uploads at once (MAX_CONCURRENT_UPLOADS); the upscaler runs 16. 96 at
    # once (as the black-box check) is four times what the ingress admits, six times what the
    # upscaler runs.
    uploads = [(f"load-{i}.png", images.png(160, 120, seed=300 + i)) for i in range(96)]
    health: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=client.base_url, timeout=30) as c:
            while not stop.is_set():
                health.append(c.get("/api/health").status_code)
                time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    rss_before = replica_rss_mb("Ingress") + replica_rss_mb("Upscaler")
    try:
        results = send(client, uploads)
    finally:
        stop.set()
        watcher.join()
    statuses = [r[0] for r in results]
    assert set(statuses) <= {200, 503}, {s: statuses.count(s) for s in set(statuses)}
    refused = [r for r in results if r[0] == 503]
    assert all(r[3] for r in refused), "a 503 without Retry-After"
    ours = [r for r in refused if r[1].get("error") == "overloaded"]  # our door, our JSON
    proxy = [r for r in refused if "backpressure" in r[1].get("text", "")]  # Serve's proxy queue, plain text
    assert len(ours) + len(proxy) == len(refused)
    assert statuses.count(200) > 0 and set(health) == {200}
    rss_after = replica_rss_mb("Ingress") + replica_rss_mb("Upscaler")
    log.warning(
        "overload: %d x 200, %d x 503 ours + %d x 503 Serve's (slowest refusal %.2f s), slowest 200 %.1f s, "
        "RSS %.0f -> %.0f MB",
        statuses.count(200), len(ours), len(proxy), max((r[2] for r in refused), default=0),
        max(r[2] for r in results if r[0] == 200), rss_before, rss_after,
    )  # fmt: skip
    assert_stored_once(results, storage)
    assert client.get("/api/health").status_code == 200


def test_a_jpeg_with_200k_extra_scans_is_refused_before_decoding(client: httpx.Client) -> None:
    bomb = images.progressive_jpeg_with_extra_scans(200_000)  # ~11 MB; libjpeg would decode every scan
    started = time.monotonic()
    response = client.post("/api/images/upload", files={"image": ("bomb.jpg", bomb, "image/jpeg")})
    log.warning("scan bomb of %.1f MB refused in %.2f s", len(bomb) / 1e6, time.monotonic() - started)
    assert response.status_code == 413 and response.json()["error"] == "too_many_scans"
