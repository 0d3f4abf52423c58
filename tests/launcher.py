"""The launcher (``python -m serve_app serve``) run as a process for tests: started until it answers
healthy, then stopped with everything it started, found by a marker in their environment (Ray re-parents
and detaches its processes, so the process tree alone does not find them)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

START_TIMEOUT_S = 300
MARKER = "VCS_LAUNCH_MARKER"


def processes() -> list[tuple[int, bytes]]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                found.append((int(proc.name), (proc / "cmdline").read_bytes()))
    return found


def parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return 0


def marked_processes(marker: str) -> list[int]:
    """Every process whose environment carries ``marker``: whatever the launcher started, however
    Ray re-parented or detached it."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@contextlib.contextmanager
def launched_until_healthy(
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    port: int,
    marker: str,
    log_path: Path,
    user: tuple[int, int] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``command`` started with ``marker`` in its environment (as the ``(uid, gid)`` of ``user`` if given:
    root only), once ``/api/health`` answers 200 (or it ended, or START_TIMEOUT_S passed); afterwards it
    and every process carrying the marker are killed."""
    log = log_path.open("wb")
    as_user: dict[str, object] = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
    process = subprocess.Popen(
        command, cwd=cwd, env={**env, MARKER: marker}, stdout=log, stderr=subprocess.STDOUT, **as_user
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                    break
            time.sleep(1)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        for pid in marked_processes(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()
