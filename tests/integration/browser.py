"""A real headless browser for the web UI tests: Debian's chromium driven by Playwright's Python API.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium``. When that is missing,
``chromium_path()`` installs Debian's package (the test command's one apt step; quick when present).
Screenshots go to ``test-artifacts/web/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from configs.settings import REPO_ROOT
from tests.parts import skip_if_listed

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"


def chromium_path() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    skip_if_listed("chromium")
    if shutil.which("apt-get") is None:
        pytest.fail("no /usr/bin/chromium and no apt-get to install it: install Debian's chromium package")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(executable), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def screenshot_path(name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / f"{name}.png")
