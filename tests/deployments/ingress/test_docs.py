"""The interactive docs come from this service alone: no URL on /docs names another origin, every one
of them answers 200 (with a key configured, without sending it), and no script is inline."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from configs.settings import load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.api_keys import KeyRing
from tests.fakes import FakeStorage, FakeUpscaler

REFERENCES = re.compile(r'(?:src|href|spec-url)="([^"]+)"')


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = load_settings()
    app = create_api(Flow(FakeUpscaler(), FakeStorage(), settings), settings, keys=KeyRing.from_keys(["k" * 20]))
    with TestClient(app) as c:
        yield c


def test_the_docs_reference_only_this_origin_and_every_reference_answers(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    urls = REFERENCES.findall(response.text)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert "<script>" not in response.text  # every script is a file, so the policy can forbid inline ones
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy and "unsafe" not in policy


def test_no_page_of_fastapi_s_own_loads_a_cdn(client: TestClient) -> None:
    assert client.get("/redoc", headers={"X-API-Key": "k" * 20}).status_code == 404  # ReDoc fetches its logo from a CDN


def test_swagger_ui_is_started_by_a_script_of_this_origin_that_asks_no_validator(client: TestClient) -> None:
    init = client.get("/docs/swagger-init.js")
    assert init.status_code == 200 and init.headers["content-type"].startswith("text/javascript")
    assert "validatorUrl: null" in init.text and "http" not in init.text.replace("window.location.href", "")
    assert "cdn" not in client.get("/docs").text.lower()


def test_the_docs_follow_a_route_prefix(client: TestClient) -> None:
    with TestClient(client.app, root_path="/upscaler") as prefixed:
        text = prefixed.get("/upscaler/docs").text
    assert '"/upscaler/docs/assets/swagger-ui-bundle.js"' in text and '"/upscaler/docs/swagger-init.js"' in text
