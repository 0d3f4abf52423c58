"""The launcher the image runs (``python -m serve_app serve``), stopped by SIGTERM while an upload is in
flight: the upload still answers 200 and is stored, then everything the launcher started is gone and it
exits 0. (Ray's own ``serve run`` drains on SIGINT only, for at most 30 s, and deletes every deployment at
once; ``serve_app/serve_cli.py`` waits for the ingress first.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import images
from bench.s3servers import free_ports
from tests.launcher import launched_until_healthy, marked_processes

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 120


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str, Path]]:
    (port,) = free_ports(1)
    marker = uuid.uuid4().hex
    storage = tmp_path / "storage"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env |= {"PORT": str(port), "STORAGE_DIR": str(storage), "JOBS_DIR": str(tmp_path / "jobs")}
    env |= {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "serve_app", "serve"]
    with launched_until_healthy(command, ROOT, env, port, marker, tmp_path / "launcher.log") as (process, url):
        yield process, url, marker, tmp_path


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
    head += "Content-Type: image/png\r\n\r\n"
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_sigterm_lets_an_upload_in_flight_finish_then_stops_everything(
    launched: tuple[subprocess.Popen[bytes], str, str, Path],
) -> None:
    process, url, marker, folder = launched
    assert process.poll() is None, (folder / "launcher.log").read_text()[-3000:]
    # ~3 MP: seconds of upscaling on a CPU, then a 12-MP PNG to encode and store.
    body, content_type = multipart("big.png", images.png(2000, 1500, seed=7))
    sent, answer = threading.Event(), dict[str, Any]()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]
        sent.set()  # the whole request is on the wire: from here on the service holds the upload

    def upload() -> None:
        headers = {"content-type": content_type, "content-length": str(len(body))}
        response = httpx.post(f"{url}/api/images/upload", content=chunks(), headers=headers, timeout=300)
        answer.update(status=response.status_code, body=response.json(), at=time.monotonic())

    sender = threading.Thread(target=upload)
    sender.start()
    assert sent.wait(60) and not answer
    stopped_at = time.monotonic()
    process.send_signal(signal.SIGTERM)
    sender.join(STOP_TIMEOUT_S)
    assert answer.get("status") == 200 and answer["at"] > stopped_at, answer
    result = answer["body"]["result"]
    assert result["folder"] == "upscaled" and (folder / "storage" / result["key"]).stat().st_size > 0
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not marked_processes(marker) and process.wait(timeout=5) == 0, (folder / "launcher.log").read_text()[-3000:]
