"""Hostile clients, black-box: what an attacker or a careless client can do to a running service.

Starts ``python -m serve_app serve`` (local storage in a temporary folder) with six API keys,
``RATE_LIMIT=10/minute``, a webhook secret and ``WEBHOOK_ALLOWED_HOSTS=127.0.0.1``, and checks over HTTP:

- 32 concurrent uploads with one key: at most 10 answered 200, the rest 429;
- ``/api/stats`` without a key: 401;
- an upscaled upload whose EXIF has a GPS position, fetched by its owner: an attachment with ``nosniff``,
  no GPS left; another key: 404;
- 30 bodies stalled from one address: an upload from another address (127.0.0.2) still answered 200;
- a webhook receiver that trickles its answer: another job's webhook still arrives within 30 s;
- 60 distinct wrong keys from one address: at least one 429.

Then the same app with ``route_prefix: /upscaler``: ``GET /api/jobs``, ``GET /api/stats`` and an upload
without a key are answered 401. One line per check; exit status 1 when any failed.

    python -m bench.hostile [--json out.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from PIL import ExifTags, Image

from bench.launcher import free_port, serving, until
from configs.settings import REPO_ROOT

KEYS = [f"hostile-check-key-{i}-{'x' * 16}" for i in range(6)]
CHECKS: list[dict[str, Any]] = []


def check(name: str, ok: bool, **figures: Any) -> None:
    CHECKS.append({"check": name, "passed": ok, **figures})
    print(f"{'PASS' if ok else 'FAIL'}  {name}  {json.dumps(figures)}", flush=True)


@contextmanager
def service(prefix: str = "/") -> Iterator[str]:
    """The service on a free port with the hostile-check settings; yields its base URL (with the prefix)."""
    port, folder = free_port(), Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    document = yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())
    document["applications"][0]["route_prefix"] = prefix
    config = folder / "serve_config.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    env = {
        **os.environ,
        "PORT": str(port),
        "RAY_AUTH_MODE": "disabled",
        "STORAGE_DIR": str(folder / "storage"),
        "JOBS_DIR": str(folder / "jobs"),
        "API_KEYS": ",".join(KEYS),
        "RATE_LIMIT": "10/minute",
        "WEBHOOK_SECRET": "hostile-check-webhook-secret",
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    }
    command = [sys.executable, "-m", "serve_app", "serve", "--config", str(config)]
    url = f"http://127.0.0.1:{port}{prefix.rstrip('/')}"
    try:
        with serving(command, env, folder / "serve.log", url):
            yield url
    finally:
        print(f"(service log: {folder / 'serve.log'})", flush=True)


def small_jpeg(gps: bool = False, seed: int = 0) -> bytes:
    image = Image.effect_noise((96, 64), 40 + seed).convert("RGB")
    exif = Image.Exif()
    if gps:
        exif[ExifTags.Base.Make] = "hostile-check"
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(
            {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0)}
        )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def upload(url: str, key: str | None, data: bytes, local_address: str = "127.0.0.1") -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=local_address), timeout=120) as client:
        return client.post(f"{url}/api/images/upload", files={"image": ("photo.jpg", data)}, headers=headers)


def rate_limit(url: str, port: int) -> None:
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(lambda i: upload(url, KEYS[0], small_jpeg(seed=i)).status_code, range(32)))
    counts = {str(s): statuses.count(s) for s in sorted(set(statuses))}
    check(
        "32 concurrent uploads, one key, 10/minute",
        counts.get("200", 0) <= 10 and set(counts) <= {"200", "429"},
        **counts,
    )


def stats_needs_key(url: str, port: int) -> None:
    status = httpx.get(f"{url}/api/stats", timeout=30).status_code
    check("/api/stats without a key", status == 401, status=status)


def gps_and_owner(url: str, port: int) -> None:
    answer = upload(url, KEYS[4], small_jpeg(gps=True))
    result = answer.json().get("result", {}) if answer.status_code == 200 else {}
    key = result.get("key", "")
    got = httpx.get(f"{url}/api/objects/{key}", headers={"X-API-Key": KEYS[4]}, timeout=30)
    other = httpx.get(f"{url}/api/objects/{key}", headers={"X-API-Key": KEYS[5]}, timeout=30)
    gps = dict(Image.open(io.BytesIO(got.content)).getexif().get_ifd(ExifTags.IFD.GPSInfo)) if got.is_success else {}
    disposition = got.headers.get("content-disposition", "")
    check(
        "owner's download: attachment, nosniff, no GPS; another key 404",
        answer.status_code == 200
        and result.get("folder") == "upscaled"
        and got.status_code == 200
        and disposition.startswith("attachment")
        and got.headers.get("x-content-type-options") == "nosniff"
        and not gps
        and other.status_code == 404,
        upload=answer.status_code,
        folder=result.get("folder"),
        owner=got.status_code,
        disposition=disposition,
        nosniff=got.headers.get("x-content-type-options"),
        gps_tags=len(gps),
        other_key=other.status_code,
    )


def stalled_bodies(url: str, port: int) -> None:
    sockets = []
    for i in range(30):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        head = (
            f"POST {url.split(str(port), 1)[1]}/api/images/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-API-Key: {KEYS[1 + i % 3]}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            "Content-Length: 1000000\r\n\r\n--b\r\n"
        )
        s.sendall(head.encode())
        sockets.append(s)
    time.sleep(2)  # let every stalled request reach the ingress
    started = time.monotonic()
    status = upload(url, KEYS[4], small_jpeg(seed=99), local_address="127.0.0.2").status_code
    seconds = round(time.monotonic() - started, 2)
    for s in sockets:
        s.close()
    check("30 stalled bodies from one address; an upload from another", status == 200, status=status, seconds=seconds)


@dataclass
class Receiver:
    trickle: bool
    url: str = ""
    arrived: list[float] = field(default_factory=list)


@contextmanager
def receiver(trickle: bool) -> Iterator[Receiver]:
    state = Receiver(trickle)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            state.arrived.append(time.monotonic())
            self.send_response(200)
            self.send_header("content-length", "1000")
            self.end_headers()
            for _ in range(120 if state.trickle else 0):  # a byte every 0.5 s for a minute
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.5)
            if not state.trickle:
                self.wfile.write(b"x" * 1000)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def webhook_trickle(url: str, port: int) -> None:
    def submit(hook: str, seed: int) -> int:
        files = [("images", ("a.jpg", small_jpeg(seed=seed), "image/jpeg"))]
        data = {"webhook_url": hook}
        return httpx.post(
            f"{url}/api/jobs", files=files, data=data, headers={"X-API-Key": KEYS[5]}, timeout=60
        ).status_code

    with receiver(trickle=True) as slow, receiver(trickle=False) as fast:
        first = submit(slow.url, 201)
        until(lambda: bool(slow.arrived), 120, time.monotonic())
        submitted = time.monotonic()
        second = submit(fast.url, 202)
        with suppress(TimeoutError):
            until(lambda: bool(fast.arrived), 60, submitted)
        delay = round(fast.arrived[0] - submitted, 2) if fast.arrived else None
    check(
        "a trickling webhook receiver; another job's webhook",
        first == second == 202 and delay is not None and delay <= 30,
        submits=[first, second],
        seconds_submit_to_webhook=delay,
    )


def wrong_keys(url: str, port: int) -> None:
    statuses = []
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"), timeout=30) as client:
        for i in range(60):
            statuses.append(
                client.get(f"{url}/api/jobs", headers={"X-API-Key": f"wrong-key-{i}-{'y' * 20}"}).status_code
            )
    counts = {str(s): statuses.count(s) for s in sorted(set(statuses))}
    check("60 distinct wrong keys from one address", counts.get("429", 0) > 0, **counts)


def under_prefix(url: str) -> None:
    jobs = httpx.get(f"{url}/api/jobs", timeout=30).status_code
    stats = httpx.get(f"{url}/api/stats", timeout=30).status_code
    posted = upload(url, None, small_jpeg()).status_code
    check(
        "route_prefix /upscaler: jobs, stats and an upload without a key",
        jobs == stats == posted == 401,
        jobs=jobs,
        stats=stats,
        upload=posted,
    )


def run_all() -> None:
    steps: list[Callable[[str, int], None]] = [
        rate_limit,
        stats_needs_key,
        gps_and_owner,
        stalled_bodies,
        webhook_trickle,
        wrong_keys,
    ]
    with service("/") as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        for step in steps:
            try:
                step(url, port)
            except Exception as exc:  # one broken check must not hide the others
                check(step.__name__, False, error=repr(exc))
    with service("/upscaler") as url:
        under_prefix(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    run_all()
    if args.json:
        args.json.write_text(json.dumps(CHECKS, indent=2) + "\n")
    failed = [c["check"] for c in CHECKS if not c["passed"]]
    print(f"{len(CHECKS) - len(failed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
