"""Shared test set-up. Ray's token auth is off for tests (Ray 2.59+ turns it on for local clusters)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.s3servers import S3Server, moto_server, seaweedfs_server, weed_data_dir
from models.data import shared_root
from tests.isolation import isolated
from tests.redis_server import redis_server

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Test-only credentials for the S3 servers started on loopback; Ray replicas inherit them.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "vcs-test-key")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "vcs-test-secret-key")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

SHARED = shared_root()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Multinode tests run only under scripts/isolated: their clusters stop every Ray they can see. A
    ``-m`` given on the command line replaces any marker expression in addopts, so this hook, not
    addopts, keeps them out of every other run."""
    if isolated():
        return
    multinode = [item for item in items if item.get_closest_marker("multinode") is not None]
    if multinode:
        config.hook.pytest_deselected(items=multinode)
        items[:] = [item for item in items if item.get_closest_marker("multinode") is None]


@pytest.fixture(scope="module", params=["moto", "seaweedfs"])
def s3_server(request: pytest.FixtureRequest) -> Iterator[S3Server]:
    """A real S3-compatible server on 127.0.0.1, once per module and kind: moto (API shape) and
    SeaweedFS (checks signatures and checksums like S3)."""
    if request.param == "moto":
        with moto_server() as server:
            yield server
    else:
        with weed_data_dir() as data_dir, seaweedfs_server(data_dir) as server:
            yield server


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "datasets").is_dir():
        pytest.fail(f"{SHARED} is missing: the tests read datasets and weights from ../shared (or $VCS_SHARED_DIR)")
    return SHARED


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's redis-server on 127.0.0.1, once per module."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
