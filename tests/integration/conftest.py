"""Real Ray Serve for the app tests: one local Ray per test session, one deployed app per module.

``_local_testing_mode`` cannot run ``@serve.batch`` (Ray 2.60), so the app runs for real: replicas
in their own processes, HTTP through Serve's proxy on a free loopback port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import ray
from ray import serve

from bench.s3servers import free_ports
from serve_app.app import AppArgs, build_app

APP = "upscaler"


@pytest.fixture(scope="session")
def serve_url() -> Iterator[str]:
    (port,) = free_ports(1)
    # Logical CPUs: the replicas' fractional requests must fit; the 2 real cores are shared anyway.
    # address="local": a new Ray of our own, even when another cluster on this machine left its address in
    # /tmp/ray/ray_current_cluster (ray.init() would join it).
    ray.init(address="local", num_cpus=4, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


@contextmanager
def deployed(
    serve_url: str, wait_healthy: bool = True, route_prefix: str = "/", **settings: Any
) -> Iterator[httpx.Client]:
    """The app built from ``settings`` (over the environment's), mounted at ``route_prefix``, as an HTTP
    client on its URL (the prefix included). ``serve.run`` returns once every replica is up; health may
    take a moment longer."""
    serve.run(build_app(AppArgs(settings=settings)), name=APP, route_prefix=route_prefix)
    try:
        with httpx.Client(base_url=serve_url + route_prefix.rstrip("/"), timeout=300) as client:
            deadline = time.monotonic() + (60 if wait_healthy else 0)
            while client.get("/api/health").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            yield client
    finally:
        serve.delete(APP)
