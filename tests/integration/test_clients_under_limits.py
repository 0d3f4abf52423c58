"""The project's own clients against a real service with tight limits (issue 19's black-box check):
``RATE_LIMIT=20/minute``, ``MAX_JOB_IMAGES=10`` and a 300 kB body limit. The command line uploads 24 files
and every one succeeds; 25 files dropped on the web page in headless Chromium are all stored, after the
page has waited out a 429 (its key's budget spent beforehand). Each client has its own key, so each has
its own rate-limit budget."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.images import png
from serve_app.__main__ import main
from tests.integration.browser import browser  # noqa: F401  (fixture)
from tests.integration.conftest import deployed
from tests.integration.helpers import stored_files

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CLI_KEY = "cli-limits-key-0123456789abcdef"
PAGE_KEY = "page-limits-key-0123456789abcdef"
MONITOR_KEY = "monitor-limits-key-0123456789abcdef"
LIMITS = {"rate_limit": "20/minute", "max_job_images": 10, "max_upload_bytes": 300_000}


@pytest.fixture(scope="module")
def service(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    storage = tmp_path_factory.mktemp("storage")
    jobs = tmp_path_factory.mktemp("jobs")
    with deployed(serve_url, storage_dir=str(storage), jobs_dir=str(jobs), upscale_scale=2, device="cpu",
                  api_keys=f"{CLI_KEY},{PAGE_KEY},{MONITOR_KEY}", **LIMITS) as client:  # fmt: skip
        yield client, storage


def images(folder: Path, prefix: str, small: int, large: int) -> list[Path]:
    """``small`` 64×48 noise PNGs (~6 kB) and ``large`` 250×200 ones (~100 kB): the count limit binds for
    the small ones, the body limit (300 kB: two large ones and their framing) for the large ones."""
    paths = []
    for i, (width, height) in enumerate([(64, 48)] * small + [(250, 200)] * large):
        path = folder / f"{prefix}-{i:02d}.png"
        path.write_bytes(png(width, height, seed=i))
        paths.append(path)
    return paths


def job_sizes(client: httpx.Client, key: str) -> list[int]:
    """The files per job of ``key``'s jobs, oldest first (a 429 waited out: the key's budget may be spent)."""
    while (answer := client.get("/api/jobs", headers={"X-API-Key": key})).status_code == 429:
        time.sleep(int(answer.headers["retry-after"]))
    return [job["total"] for job in reversed(answer.json()["jobs"])]


def stored_stems(storage: Path, prefix: str) -> set[str]:
    return {p.stem.rsplit("-", 1)[0] for p in stored_files(storage) if p.name.startswith(prefix)}


def test_the_cli_uploads_24_files_within_the_limits_and_exits_0(
    service: tuple[httpx.Client, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, storage = service
    monkeypatch.setenv("VISIONCLOUD_API_KEY", CLI_KEY)
    paths = images(tmp_path, "cli", small=20, large=4)
    code = main(["upload", *map(str, paths), "--json", "--url", str(client.base_url)])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["summary"]["succeeded"] == 24 and document["summary"]["failed"] == 0
    assert stored_stems(storage, "cli-") >= {p.stem for p in paths}
    assert job_sizes(client, CLI_KEY) == [10, 10, 2, 2]  # 10 images a job; 2 of the ~100 kB ones fit 300 kB


def test_25_files_dropped_on_the_page_are_all_stored_after_a_429_is_waited_out(
    browser: Any,  # noqa: F811
    service: tuple[httpx.Client, Path],
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    client, storage = service
    paths = images(tmp_path, "drop", small=20, large=5)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(str(client.base_url))
        page.get_by_label("Key", exact=True).fill(PAGE_KEY)
        page.get_by_role("button", name="Save key").click()
        expect(page.locator("#drop-limits")).to_have_text("up to 300 KB a file · sent 10 to a job")
        page.set_input_files("#file-input", [str(p) for p in paths])
        spent = [client.get("/api/limits", headers={"X-API-Key": PAGE_KEY}).status_code for _ in range(20)]
        assert 429 in spent  # the key's budget is spent: the page's first job will be refused
        page.get_by_role("button", name="Upscale 25 images").click()
        expect(page.locator("#overall-label")).to_contain_text("Waiting", timeout=30_000)
        expect(page.locator(".queue-item[data-status=success]")).to_have_count(25, timeout=400_000)
        expect(page.locator("#overall-count")).to_have_text("25 of 25")
        expect(page.locator("#overall-label")).to_have_text("Completed")
    finally:
        context.close()
    assert stored_stems(storage, "drop-") >= {p.stem for p in paths}
    assert job_sizes(client, PAGE_KEY) == [10, 10, 2, 2, 1]
    assert errors == []


def test_an_open_monitor_refreshes_within_its_share_of_the_rate_limit(
    browser: Any,  # noqa: F811
    service: tuple[httpx.Client, Path],
) -> None:
    """At 20/minute the Monitor view asks for /api/stats every 12 s (a quarter of the budget), not every
    2 s: a tab left open on it must not spend the budget its own uploads need."""
    from playwright.sync_api import expect

    client, _ = service
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    answered: list[float] = []  # when each keyed /api/stats was answered 200
    page.on("response", lambda r: answered.append(time.monotonic()) if r.url.endswith("/api/stats") and r.ok else None)
    try:
        page.goto(str(client.base_url))
        page.get_by_label("Key", exact=True).fill(MONITOR_KEY)
        page.get_by_role("button", name="Save key").click()
        page.get_by_role("link", name="Monitor").click()
        expect(page.locator("#stats-updated")).to_contain_text("Live", timeout=30_000)
        shown = time.monotonic()  # the page's own settings read (/api/stats once) is over by now
        page.wait_for_timeout(15_000)
    finally:
        context.close()
    refreshes = [round(t - shown, 1) for t in answered if t > shown]
    assert 1 <= len(refreshes) <= 2, refreshes  # 7 in 15 s at the old 2 s pace
