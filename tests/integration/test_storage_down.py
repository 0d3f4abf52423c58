"""S3 (real SeaweedFS) stopped and restarted under the running app: every accepted upload answers 200
with ``pending: true``, health stays 200 and shows the spool, a storage replica killed meanwhile loses
nothing (the next one drains the spool it left), and once the bucket is back every object is there
exactly once, byte-identical, with nothing partial anywhere."""

from __future__ import annotations

import hashlib
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import images
from bench.s3servers import S3Server, free_ports, seaweedfs_server, weed_data_dir
from tests.integration.conftest import deployed
from tests.integration.helpers import kill_replicas, open_image, upload

pytestmark = pytest.mark.integration


def spool_of(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/api/health")
    assert response.status_code == 200, response.text
    spool: dict[str, Any] = response.json()["spool"]
    return spool


def wait_drained(client: httpx.Client, timeout_s: float = 120) -> int:
    """Objects left in the spool once it is empty or ``timeout_s`` passed; health may answer 503 for a
    few seconds while Serve replaces the killed storage replica."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get("/api/health")
        if response.status_code == 200 and response.json()["spool"]["objects"] == 0:
            return 0
        time.sleep(0.5)
    return int(spool_of(client)["objects"])


def bucket_objects(s3: S3Server) -> dict[str, tuple[bytes, str]]:
    """Every object in the bucket: its bytes and the SHA-256 its metadata claims."""
    client, found = s3.client(), {}
    for listed in client.list_objects_v2(Bucket=s3.bucket).get("Contents", []):
        obj = client.get_object(Bucket=s3.bucket, Key=listed["Key"])
        found[listed["Key"]] = (obj["Body"].read(), obj["Metadata"].get("sha256", ""))
    return found


def uploads() -> list[tuple[str, bytes]]:
    good = [(f"good{i}.jpg", images.jpeg(3840, 2160, seed=10 + i)) for i in range(3)]
    small = [(f"small{i}.png", images.png(48, 40, seed=20 + i)) for i in range(3)]
    return good + small


def test_s3_stopped_and_restarted_loses_nothing(serve_url: str, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    ports = free_ports(5, grpc_offset=10000)
    with weed_data_dir() as data_dir, ExitStack() as running_s3:
        s3 = running_s3.enter_context(seaweedfs_server(data_dir, ports=ports))
        settings = {
            "s3_bucket": s3.bucket,
            "s3_endpoint_url": s3.endpoint,
            "s3_addressing_style": "path",
            "spool_dir": str(spool_dir),
            "health_cache_s": 0,  # the spool's depth is read right after the uploads
        }
        with deployed(serve_url, **settings) as client:
            before = upload(client, images.png(40, 40, seed=1), "before.png", "image/png").json()["result"]
            assert before["pending"] is False
            running_s3.close()  # SeaweedFS stops (SIGTERM) under the running app
            sent, results = _upload_while_down(client)
            assert kill_replicas("Storage") == 1  # the spool outlives its replica
            with seaweedfs_server(data_dir, ports=ports) as again:
                assert wait_drained(client) == 0
                stored = bucket_objects(again)
    assert sorted(stored) == sorted([before["key"], *(r["key"] for r in results)])  # each once, nothing extra
    for (_, data), result in zip(sent, results, strict=True):
        body, sha256 = stored[result["key"]]
        assert len(body) == result["size_bytes"] and hashlib.sha256(body).hexdigest() == sha256
        if result["folder"] == "good_quality":
            assert body == data
        else:
            assert open_image(body).size == (result["output_width"], result["output_height"])
    left = {p.name for p in spool_dir.iterdir()} - {".lock", ".state"}  # the shared totals stay
    assert left == {"corrupt", "dead", "keys"} and not any(any((spool_dir / name).iterdir()) for name in left)


def _upload_while_down(client: httpx.Client) -> tuple[list[tuple[str, bytes]], list[dict[str, Any]]]:
    sent, results = uploads(), []
    for name, data in sent:
        response = upload(client, data, name, "image/png" if name.endswith("png") else "image/jpeg")
        assert response.status_code == 200, response.text
        results.append(response.json()["result"])
    assert all(r["pending"] for r in results)
    assert {r["folder"] for r in results} == {"good_quality", "upscaled"}
    spool = spool_of(client)  # healthy, with the spool's depth and age
    assert spool["objects"] == 6 and not spool["bucket_reachable"] and spool["oldest_age_s"] >= 0
    return sent, results
