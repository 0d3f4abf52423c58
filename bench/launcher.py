"""Start and stop times of the launcher the container runs: `python -m serve_app serve` from a cold start
to the first healthy answer and the first upscaled upload, then SIGTERM until it and everything it
started are gone (processes found by a marker in their environment).

    python -m bench.launcher [--config serve_config.yaml] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench.machine import describe
from configs.settings import REPO_ROOT

MARKER = "VCS_BENCH_LAUNCH"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def marked(token: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and f"{MARKER}={token}".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def until(condition: Any, timeout_s: float, started: float) -> float:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done after {timeout_s} s")
        time.sleep(0.2)
    return round(time.monotonic() - started, 2)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def serving(command: list[str], env: dict[str, str], log: Path, url: str, stop: int = signal.SIGTERM) -> Iterator[None]:
    """``command`` (a launcher of the service) run from the repository with ``env`` and its output in
    ``log``, until ``url`` answers healthy (600 s at most); then stopped with ``stop`` (SIGTERM: the
    launcher's graceful path; SIGINT for ``serve run``) and, after 120 s, killed with its process group."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        until(lambda: healthy(url), 600, time.monotonic())
        yield
    finally:
        process.send_signal(stop)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def measure(config: Path) -> dict[str, Any]:
    port, token = free_port(), uuid.uuid4().hex
    url = f"http://127.0.0.1:{port}"
    storage = tempfile.mkdtemp(prefix="bench-launcher-")
    env = {**os.environ, "PORT": str(port), "STORAGE_DIR": storage, MARKER: token, "RAY_AUTH_MODE": "disabled"}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "serve_app", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first_healthy = until(lambda: healthy(url), 600, started)
        buffer = io.BytesIO()
        Image.new("RGB", (320, 240), (40, 120, 200)).save(buffer, "PNG")
        response = httpx.post(f"{url}/api/images/upload", files={"image": ("b.png", buffer.getvalue())}, timeout=300)
        first_upload = round(time.monotonic() - started, 2)
        processes = len(marked(token))
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        exited = until(lambda: process.poll() is not None, 120, stopping)
        all_gone = until(lambda: not marked(token), 120, stopping)
    finally:
        if process.poll() is None:
            process.kill()
    return {
        "seconds_to_first_healthy": first_healthy,
        "seconds_to_first_upscaled_upload": first_upload,
        "upload_status": response.status_code,
        "processes_while_serving": processes,
        "seconds_sigterm_to_exit": exited,
        "seconds_sigterm_to_nothing_left": all_gone,
        "exit_code": process.returncode,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "serve_config.yaml")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = {"machine": describe(), "launcher": measure(args.config)}
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return report


if __name__ == "__main__":
    main()
