"""Access control on real Ray Serve, the app mounted under a route prefix (``/upscaler``) as an
operator may deploy it: Serve's proxy keeps the whole path and sets ``root_path``, and every route but
health and the page still needs the key; the rate limit holds exactly under concurrency with its
counters in the embedded broker's Redis; wrong keys from one address meet a 429."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bench import images
from tests.integration.conftest import deployed

pytestmark = pytest.mark.integration

KEY, BURST_KEY = "mounted-test-key-0123456789", "burst-test-key-0123456789"


@pytest.fixture(scope="module")
def client(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    storage, jobs = tmp_path_factory.mktemp("storage"), tmp_path_factory.mktemp("jobs")
    settings = {
        "storage_dir": str(storage),
        "jobs_dir": str(jobs),
        "api_keys": f"{KEY},{BURST_KEY}",
        "rate_limit": "10/minute",
    }
    with deployed(serve_url, route_prefix="/upscaler", device="cpu", **settings) as c:
        assert str(c.base_url).endswith("/upscaler/")
        yield c


def upload(client: httpx.Client, headers: dict[str, str] | None = None) -> httpx.Response:
    files = {"image": ("a.png", images.png(8, 8), "image/png")}
    return client.post("/api/images/upload", files=files, headers=headers or {})


def test_under_a_route_prefix_every_route_but_health_and_the_page_needs_the_key(
    client: httpx.Client, tmp_path: Path
) -> None:
    for _ in range(2):
        assert client.get("/api/jobs").status_code == 401
        assert client.get("/api/stats").status_code == 401
        assert client.get("/api/models").status_code == 401
        refused = upload(client)
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    health = client.get("/api/health")
    assert health.status_code == 200 and health.json() == {"status": "healthy"}
    assert client.get("/index.html").status_code == 200
    assert upload(client, {"X-API-Key": KEY}).status_code == 200  # the app works where it is mounted


def test_thirty_two_requests_at_once_get_exactly_ten_answers(client: httpx.Client) -> None:
    with ThreadPoolExecutor(32) as pool:
        statuses = list(
            pool.map(lambda _: client.get("/api/models", headers={"X-API-Key": BURST_KEY}).status_code, range(32))
        )
    assert sorted(statuses) == [200] * 10 + [429] * 22


def test_wrong_keys_from_one_address_meet_a_429(client: httpx.Client) -> None:
    statuses = [
        client.get("/api/jobs", headers={"X-API-Key": f"guess-{i:03d}-0123456789"}).status_code for i in range(12)
    ]
    assert statuses == [401] * 10 + [429] * 2
