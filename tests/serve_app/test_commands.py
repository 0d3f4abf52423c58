"""The command line as people run it (a subprocess, as ``visioncloud`` or ``python -m serve_app``) against
a scripted service: it waits out 429 and 503, says what a non-JSON answer was instead of a traceback,
takes its URL from ``$VISIONCLOUD_URL``, prints its version, and is installed as a console script."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from configs.settings import REPO_ROOT
from configs.version import VERSION
from serve_app.__main__ import program_name
from tests.serve_app.fake_service import Answer, fake_service

BAD_GATEWAY = Answer(502, text="<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")
ITEMS = [{"index": i, "filename": f"{n}.png", "status": "success", "error": None,
          "result": {"folder": "upscaled", "key": f"upscaled/{n}-0123.png", "status": "success"}}
         for i, n in enumerate("ab")]  # fmt: skip
DONE = {"job_id": "j1", "status": "completed", "total": 2, "done": 2, "failed": 0, "items": ITEMS}


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VISIONCLOUD_")}
    return subprocess.run(
        [sys.executable, "-m", "serve_app", *argv],
        cwd=REPO_ROOT,
        env={**environ, "COLUMNS": "120", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_meeting_an_html_502_says_so_and_exits_2_without_a_traceback() -> None:
    with fake_service({("GET", "/api/health"): [BAD_GATEWAY]}) as service:
        done = cli("status", "--url", service.url)
    assert done.returncode == 2
    assert "HTTP 502 with text/html, not the API's JSON" in done.stderr and "Traceback" not in done.stderr


def test_upload_meeting_an_html_502_says_so_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"png")
    with fake_service({("GET", "/api/limits"): [BAD_GATEWAY]}) as service:
        done = cli("upload", str(tmp_path / "a.png"), "--url", service.url)
    assert done.returncode == 2 and "HTTP 502 with text/html" in done.stderr and "Traceback" not in done.stderr


def test_upload_waits_out_a_429_and_a_503_and_finishes(tmp_path: Path) -> None:
    for name in "ab":
        (tmp_path / f"{name}.png").write_bytes(name.encode() * 100)
    script = {
        ("POST", "/api/jobs"): [Answer(429, {"error": "rate_limited", "message": "Slow down"}, {"Retry-After": "1"}),
                                Answer(202, {"job_id": "j1", "status": "queued", "total": 2})],
        ("GET", "/api/jobs/j1"): [Answer(503, {"error": "overloaded", "message": "Busy"}, {"Retry-After": "1"}),
                                  Answer(200, DONE)],
    }  # fmt: skip
    with fake_service(script) as service:  # no /api/limits: an older service, the old defaults
        done = cli("upload", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--json", "--url", service.url)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [f["status"] for f in document["files"]] == ["success", "success"]
    assert service.requests == [("GET", "/api/limits"), ("POST", "/api/jobs"), ("POST", "/api/jobs"),
                                ("GET", "/api/jobs/j1"), ("GET", "/api/jobs/j1")]  # fmt: skip


def test_the_url_comes_from_visioncloud_url_when_not_given() -> None:
    with fake_service({("GET", "/api/health"): [BAD_GATEWAY]}) as service:
        done = cli("status", env={"VISIONCLOUD_URL": service.url})
    assert service.requests == [("GET", "/api/health")] and done.returncode == 2


def test_version_prints_the_services_version() -> None:
    done = cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"python -m serve_app {VERSION}"


def test_a_visioncloud_console_script_runs_the_same_main() -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["visioncloud"].partition(":")
    main = getattr(importlib.import_module(module), name)
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    assert module == "serve_app.__main__"  # so `python -m serve_app` and `visioncloud` are one program


def test_the_program_names_itself_as_it_was_run() -> None:
    assert program_name("/home/me/.venv/bin/visioncloud") == "visioncloud"
    assert program_name("/repo/serve_app/__main__.py") == "python -m serve_app"
