"""The command line against the real service: ``upload`` (folders, --recursive, --out mirroring the three
folders, resume, failures, --json) and ``status``. One deployed app for the module, with an API key
that the client reads from ``$VISIONCLOUD_API_KEY``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.images import jpeg, png
from configs.settings import REPO_ROOT
from serve_app.__main__ import main
from tests.integration.conftest import deployed
from tests.integration.helpers import open_image, stored_files

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

API_KEY = "cli-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def service(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    storage = tmp_path_factory.mktemp("storage")
    jobs = tmp_path_factory.mktemp("jobs")
    with deployed(
        serve_url, storage_dir=str(storage), jobs_dir=str(jobs), upscale_scale=2, device="cpu", api_key=API_KEY
    ):
        yield serve_url, storage


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIONCLOUD_API_KEY", API_KEY)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    (folder / "small.png").write_bytes(png(96, 64, seed=1))
    (folder / "big.jpg").write_bytes(jpeg(3840, 2160, seed=2))
    (folder / "sub").mkdir()
    (folder / "sub" / "deeper.png").write_bytes(png(80, 60, seed=3))
    (folder / "readme.txt").write_text("not an image, and not picked from a folder")
    return folder


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["upload", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(f["path"]).name: f for f in document["files"]}


def test_a_folder_is_mirrored_into_the_three_folders_and_a_rerun_resumes(
    service: tuple[str, Path], photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, storage = service
    out = tmp_path / "out"
    code, document = run_json(capsys, str(photos), "--out", str(out), "--url", url)
    assert code == 0
    files = by_name(document)
    assert set(files) == {"small.png", "big.jpg"}  # one level deep without --recursive; .txt skipped
    assert files["small.png"]["folder"] == "upscaled" and files["big.jpg"]["folder"] == "good_quality"
    upscaled = Path(files["small.png"]["output"])
    assert upscaled.parent == out / "upscaled" and open_image(upscaled.read_bytes()).size == (192, 128)
    kept = Path(files["big.jpg"]["output"])
    assert kept.parent == out / "good_quality" and kept.read_bytes() == (photos / "big.jpg").read_bytes()
    assert upscaled.read_bytes() == (storage / files["small.png"]["key"]).read_bytes()
    assert document["summary"]["per_folder"] == {"good_quality": 1, "upscaled": 1, "couldn't_upscale": 0}

    objects = stored_files(storage)
    code, again = run_json(capsys, str(photos), "--out", str(out), "--url", url, "--recursive")
    assert code == 0
    files = by_name(again)
    assert files["small.png"]["status"] == files["big.jpg"]["status"] == "skipped"
    assert files["deeper.png"]["status"] == "success"
    assert Path(files["deeper.png"]["output"]).parent == out / "upscaled"
    new = [p for p in stored_files(storage) if p not in objects and "/jobs/" not in p.as_posix()]
    # With keys, each result also has an owner marker (owners/<key id>/upscaled/…): count the objects.
    assert [p.relative_to(storage).as_posix() for p in new if p.parent == storage / "upscaled"] == [
        files["deeper.png"]["key"]
    ]
    where = {p.relative_to(storage).parts[0] for p in new if p.name == Path(files["deeper.png"]["key"]).name}
    assert where == {"upscaled", "owners"}  # the object, and the marker saying the job's key owns it


def test_a_bad_file_fails_with_the_services_message_and_the_rest_still_runs(
    service: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = service
    (tmp_path / "ok.png").write_bytes(png(64, 48, seed=4))
    (tmp_path / "broken.png").write_bytes(b"definitely not a png" * 10)
    code, document = run_json(capsys, str(tmp_path / "ok.png"), str(tmp_path / "broken.png"), "--url", url)
    assert code == 1
    files = by_name(document)
    assert files["broken.png"]["status"] == "refused"
    assert files["broken.png"]["message"] == "The uploaded file is not an image; send a JPEG, PNG or WebP file."
    assert files["ok.png"]["status"] == "success" and files["ok.png"]["folder"] == "upscaled"
    assert document["summary"]["failed"] == 1


def test_without_the_key_nothing_is_sent_and_the_exit_status_says_so(
    service: tuple[str, Path], photos: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VISIONCLOUD_API_KEY")
    assert main(["upload", str(photos / "small.png"), "--url", service[0]]) == 2
    assert "valid API key is required" in capsys.readouterr().err


def test_progress_and_summary_are_printed_for_people(
    service: tuple[str, Path], photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["upload", str(photos / "small.png"), "--url", service[0]]) == 0
    printed = capsys.readouterr().out
    assert "small.png → upscaled/" in printed
    assert "Summary" in printed and "couldn't_upscale/" in printed


def test_status_prints_health_models_and_statistics(service: tuple[str, Path]) -> None:
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "serve_app", "status", "--url", service[0]],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "healthy" in done.stdout and "vcsr-m-x2" in done.stdout and "default" in done.stdout
    assert "upscaled/" in done.stdout and "upscale success rate" in done.stdout
    stats = httpx.get(f"{service[0]}/api/stats", headers={"X-API-Key": API_KEY}).json()
    document = json.loads(
        subprocess.run(
            [sys.executable, "-m", "serve_app", "status", "--url", service[0], "--json"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    )
    assert document["health"] == {"status": "healthy"}
    assert document["stats"]["images_per_folder"] == stats["images_per_folder"]
