"""``GET /api/limits`` in-process: the figures the service enforces, declared in OpenAPI, behind the key."""

from __future__ import annotations

from fastapi.testclient import TestClient

from configs.settings import load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from deployments.ingress.api_keys import KeyRing
from tests.fakes import FakeStorage, FakeUpscaler

KEY = "in-process-key-0123456789"


def app_client(**overrides: object) -> TestClient:
    settings = load_settings(**overrides)
    keys = KeyRing.from_keys(settings.api_key_list) if settings.api_key_list else None
    return TestClient(create_api(Flow(FakeUpscaler(), FakeStorage(), settings), settings, keys=keys))


def test_the_limits_are_the_settings_the_service_enforces() -> None:
    with app_client(max_job_images=10, max_upload_bytes=2_000_000, max_uploads_per_client=3,
                    rate_limit="20/minute;500/hour", max_image_pixels=4_000_000) as client:  # fmt: skip
        response = client.get("/api/limits")
    assert response.status_code == 200
    body = response.json()
    assert body["max_job_images"] == 10 and body["max_upload_bytes"] == body["max_job_bytes"] == 2_000_000
    assert body["max_uploads_per_client"] == 3 and body["max_image_pixels"] == 4_000_000
    assert body["rate_limit"] == "20/minute;500/hour"
    assert body["rate_limits"] == [{"amount": 20, "period_s": 60}, {"amount": 500, "period_s": 3600}]
    assert body["max_upscale_pixels"] == 3840 * 2160 and body["max_concurrent_uploads"] == 24


def test_without_a_rate_limit_the_windows_are_empty() -> None:
    with app_client(rate_limit=None) as client:
        body = client.get("/api/limits").json()
    assert body["rate_limit"] is None and body["rate_limits"] == []


def test_the_limits_need_a_key_like_the_model_list_and_count_against_the_rate_limit() -> None:
    with app_client(api_key=KEY, rate_limit="2/minute") as client:
        assert client.get("/api/limits").status_code == client.get("/api/models").status_code == 401
        client.headers["X-API-Key"] = KEY
        assert client.get("/api/limits").status_code == 200
        assert client.get("/api/limits").status_code == 200
        refused = client.get("/api/limits")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_openapi_declares_the_response_model() -> None:
    with app_client() as client:
        schema = client.get("/openapi.json").json()
    ok = schema["paths"]["/api/limits"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/LimitsResponse"}
    fields = schema["components"]["schemas"]["LimitsResponse"]["properties"]
    assert {"max_upload_bytes", "max_job_images", "max_job_bytes", "max_uploads_per_client", "rate_limit",
            "rate_limits", "max_image_pixels"} <= set(fields)  # fmt: skip
