"""/docs in a real headless Chromium (no Ray: the in-process app behind uvicorn): Swagger UI renders,
opens an operation, tries it out and shows the API-key dialog under the docs' strict
Content-Security-Policy, with no policy violation and no request to another origin."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from bench.s3servers import free_ports
from configs.settings import load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.api_keys import KeyRing
from tests.fakes import FakeStorage, FakeUpscaler
from tests.integration.browser import browser, screenshot_path

pytestmark = pytest.mark.integration
__all__ = ["browser"]  # the fixture


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    settings = load_settings()
    app = create_api(Flow(FakeUpscaler(), FakeStorage(), settings), settings, keys=KeyRing.from_keys(["k" * 20]))
    (port,) = free_ports(1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(url + "/docs").status_code == 200
    yield url
    server.should_exit = True
    thread.join(10)


def test_swagger_ui_works_under_the_docs_policy_from_this_origin_alone(browser: Any, base_url: str) -> None:
    page = browser.new_page()
    console: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(base_url + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "VisionCloud Upscaler" in page.inner_text(".swagger-ui .info .title")
    page.locator(".opblock-summary").first.click()  # POST /api/images/upload
    page.click("text=Try it out")
    page.click(".swagger-ui .authorize")
    page.wait_for_selector("text=X-API-Key")
    page.screenshot(path=screenshot_path("docs"))
    page.close()
    assert [m for m in console if m.startswith("error") or "Content Security Policy" in m] == []
    assert [u for u in requests if not u.startswith((base_url, "data:"))] == []
