"""The handle protocols type each method's arguments: a call that does not fit fails mypy, as a call
through ``Remote.remote(*args: Any)`` never did."""

from __future__ import annotations

from pathlib import Path

from mypy import api

CALLS = """
from deployments.contracts.handles import JobsHandle, StorageHandle

async def calls(jobs: JobsHandle, storage: StorageHandle) -> None:
    await jobs.list_jobs.remote(50, None, None)  # every key's jobs: allowed
    await jobs.get.remote("job", None)  # get takes an owner string ("" without keys)
    await storage.get.remote(b"key")  # keys are strings
    await storage.download_url.remote("key", owner=1)
"""


def test_a_call_that_does_not_fit_the_method_fails_mypy(tmp_path: Path) -> None:
    module = tmp_path / "calls.py"
    module.write_text(CALLS)
    out, _, status = api.run(["--strict", str(module)])  # the project's own cache: seconds, not a minute
    errors = [line.split(": error: ")[0].rsplit(":", 1)[-1] for line in out.splitlines() if ": error: " in line]
    assert status == 1 and errors == ["6", "7", "8"], out
