"""The web UI's routes in-process (FastAPI TestClient over the real app, fake upscaler, real local
storage): the page and its headers, stored objects for browsers, download URLs and /api/stats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench.images import jpeg, png
from configs.settings import load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.api_keys import KeyRing
from serve_app.app import WEB_DIR
from tests.fakes import FakeUpscaler, LocalStorage, Method

KEY = "in-process-key-0123456789"
OTHER_KEY = "another-in-process-key-9876543210"


@pytest.fixture(scope="module")
def storage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage")


def app_client(storage_dir: Path, **overrides: object) -> TestClient:
    settings = load_settings(storage_dir=storage_dir, s3_bucket=None, **overrides)
    flow = Flow(FakeUpscaler(2, pixels=True), LocalStorage(storage_dir), settings)  # type: ignore[arg-type]
    keys = KeyRing.from_keys(settings.api_key_list)  # as the builder makes them
    return TestClient(create_api(flow, settings, keys=keys, web_dir=WEB_DIR))


@pytest.fixture(scope="module")
def client(storage_dir: Path) -> Iterator[TestClient]:
    with app_client(storage_dir) as c:
        yield c


def upload(client: TestClient, data: bytes, name: str) -> dict[str, object]:
    response = client.post("/api/images/upload", files={"image": (name, data, "image/png")})
    assert response.status_code == 200, response.text
    return dict(response.json()["result"])


def test_the_page_is_served_at_the_root_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<title>VisionCloud Upscaler</title>" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe" not in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline for the policy to refuse
    assert client.get("/js/main.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/vendor/uplot/uPlot.iife.min.js").status_code == 200


def test_the_api_and_the_docs_keep_their_own_headers(client: TestClient) -> None:
    assert "content-security-policy" not in client.get("/api/health").headers
    docs_policy = client.get("/docs").headers["content-security-policy"]  # the docs' own, not the page's
    assert "script-src 'self';" in docs_policy and "unsafe-eval" not in docs_policy
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["success"] is False


def test_a_result_names_its_download_route_which_serves_the_stored_bytes(client: TestClient, storage_dir: Path) -> None:
    result = upload(client, png(40, 30), "tiny.png")
    assert result["folder"] == "upscaled"
    assert result["download_url"] == f"/api/objects/{result['key']}"
    response = client.get(str(result["download_url"]))
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == (storage_dir / str(result["key"])).read_bytes()


@pytest.mark.parametrize(
    "key",
    [
        "upscaled/../../etc/passwd",
        "upscaled/%2e%2e/%2e%2e/etc/passwd",
        "jobs/0123456789abcdef/0000.png",
        "elsewhere/x.png",
        "upscaled/sub/x.png",
        "upscaled/none-0123456789abcdef.png",
    ],
)
def test_object_keys_outside_the_result_folders_are_not_found(client: TestClient, key: str) -> None:
    response = client.get(f"/api/objects/{key}")
    assert response.status_code == 404
    # A literal ../ is resolved by the client before it is sent (then no route matches at all).
    assert response.json()["error"] in ("object_not_found", "not_found")


def test_objects_need_the_api_key_when_the_service_has_one(storage_dir: Path) -> None:
    with app_client(storage_dir, api_key=KEY) as c:
        result = upload_with_key(c, png(40, 30, seed=9))
        key = str(result["key"])
        assert c.get(f"/api/objects/{key}").status_code == 401
        assert c.get(f"/api/objects/{key}", headers={"X-API-Key": KEY}).status_code == 200


def upload_with_key(c: TestClient, data: bytes, key: str = KEY, name: str = "k.png") -> dict[str, object]:
    response = c.post("/api/images/upload", files={"image": (name, data, "image/png")}, headers={"X-API-Key": key})
    assert response.status_code == 200
    return dict(response.json()["result"])


def test_another_key_gets_the_404_of_a_missing_object(storage_dir: Path) -> None:
    with app_client(storage_dir, api_keys=f"{KEY},{OTHER_KEY}") as c:
        key = str(upload_with_key(c, png(40, 30, seed=11))["key"])
        theirs = c.get(f"/api/objects/{key}", headers={"X-API-Key": OTHER_KEY})
        missing = c.get("/api/objects/upscaled/none-0123456789abcdef.png", headers={"X-API-Key": OTHER_KEY})
        mine = c.get(f"/api/objects/{key}", headers={"X-API-Key": KEY})
    assert (
        (theirs.status_code, theirs.json()["error"])
        == (missing.status_code, missing.json()["error"])
        == (
            404,
            "object_not_found",
        )
    )
    assert mine.status_code == 200 and mine.content == (storage_dir / key).read_bytes()


def test_duplicate_is_only_about_the_callers_own_uploads(storage_dir: Path) -> None:
    data = png(40, 30, seed=12)
    with app_client(storage_dir, api_keys=f"{KEY},{OTHER_KEY}") as c:
        first, again = upload_with_key(c, data), upload_with_key(c, data)
        theirs = upload_with_key(c, data, OTHER_KEY)
        assert c.get(f"/api/objects/{theirs['key']}", headers={"X-API-Key": OTHER_KEY}).status_code == 200
    assert (first["duplicate"], again["duplicate"], theirs["duplicate"]) == (False, True, False)
    assert first["key"] == theirs["key"]  # one stored object, owned by both keys


def test_downloads_are_attachments_never_sniffed_or_run(client: TestClient) -> None:
    hostile = jpeg(3840, 1080, seed=13) + b"<html><script>alert(document.cookie)</script></html>"
    result = upload(client, hostile, "photo.jpg")
    assert result["folder"] == "good_quality"  # stored as uploaded, script and all
    response = client.get(str(result["download_url"]))
    assert response.status_code == 200 and response.content == hostile
    name = str(result["key"]).rsplit("/", 1)[-1]
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"].split("; ")


def test_a_presigned_url_is_asked_for_the_callers_own_key(storage_dir: Path) -> None:
    settings = load_settings(storage_dir=storage_dir, s3_bucket="some-bucket", api_key=KEY)
    storage = LocalStorage(storage_dir)
    storage.presigns = Method(lambda: True)  # type: ignore[attr-defined]
    storage.download_url = Method(lambda key, expires_s=3600, owner=None: f"https://signed.example/{owner}")  # type: ignore[attr-defined]
    flow = Flow(FakeUpscaler(2, pixels=True), storage, settings)  # type: ignore[arg-type]
    keys = KeyRing.from_keys(settings.api_key_list)
    with TestClient(create_api(flow, settings, keys=keys, web_dir=WEB_DIR)) as c:
        result = upload_with_key(c, png(40, 30, seed=14))
    assert result["download_url"] == f"https://signed.example/{keys.key_id(KEY)}"


def test_stats_count_what_this_replica_processed(storage_dir: Path) -> None:
    with app_client(storage_dir, stats_cache_s=0) as c:  # every call computed afresh
        before = c.get("/api/stats").json()
        assert before["images_total"] == 0 and before["queue_depth"] is None and before["spool_depth"] is None
        upload(c, png(64, 48, seed=1), "a.png")
        upload(c, jpeg(3840, 2160, seed=2), "b.jpg")
        stats = c.get("/api/stats").json()
    assert stats["images_per_folder"] == {"good_quality": 1, "upscaled": 1, "couldn't_upscale": 0}
    assert stats["upscale"]["success_rate"] == 1.0
    assert stats["quality_threshold"] == 0.5 and stats["storage"] == "local"
    assert stats["processing_ms"]["samples"] == 2 and stats["processing_ms"]["p95"] >= stats["processing_ms"]["p50"]
    assert sum(b["count"] for b in stats["quality_score_histogram"]) == 2
    assert stats["timeline"][-1]["count"] == 2
    assert stats["replicas"] is None  # no Serve controller in-process


def test_an_upload_never_fails_for_its_download_url(storage_dir: Path) -> None:
    """With storage that presigns, the route asks it to; a replica that dies there (or hangs) leaves
    the result with the object route instead of failing an upload that was stored."""
    settings = load_settings(storage_dir=storage_dir, s3_bucket="some-bucket")
    storage = LocalStorage(storage_dir)

    async def died(key: str, **kwargs: object) -> str:
        raise RuntimeError("ActorDiedError")

    storage.presigns = Method(lambda: True)  # type: ignore[attr-defined]
    storage.download_url = type("M", (), {"remote": staticmethod(died)})()  # type: ignore[attr-defined]
    flow = Flow(FakeUpscaler(2, pixels=True), storage, settings)  # type: ignore[arg-type]
    with TestClient(create_api(flow, settings, web_dir=WEB_DIR)) as c:
        result = upload(c, png(40, 30, seed=5), "s3.png")
    assert result["download_url"] == f"/api/objects/{result['key']}"
