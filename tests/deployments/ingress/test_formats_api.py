"""``GET /api/formats``: the format table as the page reads it; the page itself lists no format."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from configs import formats
from configs.formats import ImageFormat
from configs.settings import load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from serve_app.app import WEB_DIR
from tests.fakes import FakeStorage, FakeUpscaler


def client() -> TestClient:
    settings = load_settings(s3_bucket=None)
    flow = Flow(FakeUpscaler(2), FakeStorage(), settings)  # type: ignore[arg-type]
    return TestClient(create_api(flow, settings, web_dir=WEB_DIR))


def test_the_formats_route_answers_the_table() -> None:
    answer = client().get("/api/formats").json()
    assert [f["name"] for f in answer["formats"] if f["output"]] == ["png", "webp", "jpeg"]
    jpeg = next(f for f in answer["formats"] if f["name"] == "jpeg")
    assert jpeg == {
        "name": "jpeg",
        "title": "JPEG",
        "label": "JPEG · smallest",
        "media_type": "image/jpeg",
        "suffixes": [".jpg", ".jpeg"],
        "output": True,
    }
    assert answer["inputs"] == "JPEG, PNG or WebP"


def test_a_format_added_to_the_table_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    tiff = ImageFormat("tiff", "TIFF", "TIFF", "image/tiff", "tif", (".tif",), "TIFF · archival")
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, tiff))
    answer = client().get("/api/formats").json()
    assert answer["formats"][-1]["name"] == "tiff" and answer["inputs"] == "JPEG, PNG, TIFF or WebP"


def test_the_page_hard_codes_no_format() -> None:
    """The page's choices and accept list come from /api/formats (read by js/main.js)."""
    page = (WEB_DIR / "index.html").read_text()
    assert not re.search(r"image/(png|jpeg|webp)|\.(png|jpe?g|webp)\b|WebP|value=\"(png|webp|jpeg)\"", page)
