"""A test machine's missing part (redis-server, chromium) skips the tests that need it only when
scripts/test listed it in VCS_TEST_SKIP (and named it in its last line); otherwise it still fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.redis_server import redis_server


@pytest.fixture
def no_redis_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_a_missing_redis_server_that_scripts_test_listed_skips(
    no_redis_server: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCS_TEST_SKIP", "redis-server chromium")

    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"), redis_server(no_redis_server):
        pass


def test_a_missing_redis_server_no_one_listed_fails(no_redis_server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCS_TEST_SKIP", "chromium")

    with pytest.raises(RuntimeError, match="redis-server is not installed"), redis_server(no_redis_server):
        pass
