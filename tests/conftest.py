"""Shared test set-up. Ray's token auth is off for tests (Ray 2.59+ turns it on for local clusters)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Test-only credentials for the S3 servers started on loopback; Ray replicas inherit them.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "vcs-test-key")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "vcs-test-secret-key")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "datasets").is_dir():
        pytest.fail(f"{SHARED} is missing: the tests read datasets and weights from ../shared")
    return SHARED
