"""Keys and rate limits in-process (FastAPI TestClient over the real app, fake handles): checked before
the body is read, answered as JSON through the one responder, per key, with the headers clients need."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient

import deployments.ingress.api as api
from bench import images
from configs.settings import SettingsError, load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api_keys import KeyHash, KeyRing, read_keys_file, request_key_id
from tests.fakes import FakeStorage, FakeUpscaler

K1, K2 = "k1-0123456789abcdef", "k2-0123456789abcdef"


class NoMetrics:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def whoami() -> APIRouter:
    router = APIRouter()

    @router.get("/api/whoami")
    async def who(request: Request) -> dict[str, str | None]:
        return {"key_id": request_key_id(request)}

    return router


def client(monkeypatch: pytest.MonkeyPatch, keys: list[str] | None = None, **settings: Any) -> TestClient:
    monkeypatch.setattr(api, "IngressMetrics", NoMetrics)
    config = load_settings(**settings)
    flow = Flow(FakeUpscaler(), FakeStorage(), config)
    app = api.create_api(flow, config, [whoami()], KeyRing.from_keys(keys or []))
    return TestClient(app)


def post(c: TestClient, key: str | None = None, seed: int = 0) -> Any:
    headers = {"X-API-Key": key} if key else {}
    files = {"image": ("a.png", images.png(8, 8, seed=seed), "image/png")}
    return c.post("/api/images/upload", files=files, headers=headers)


def test_without_keys_the_api_is_open(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(monkeypatch)
    assert post(c).status_code == 200 and c.get("/api/whoami").json() == {"key_id": None}


def test_a_missing_or_wrong_key_is_refused_with_json(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(monkeypatch, [K1, K2])
    for key in (None, "wrong-key-0123456789", K1 + "x"):
        response = post(c, key)
        assert response.status_code == 401
        body = response.json()
        assert (body["success"], body["error"]) == (False, "unauthorized") and body["request_id"]
    assert post(c, K1).status_code == 200 and post(c, K2).status_code == 200


def test_the_key_is_checked_before_the_body_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    app = client(monkeypatch, [K1]).app
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/images/upload",
        "headers": [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", b"1000")],
        "query_string": b"",
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "scheme": "http",
        "root_path": "",
        "http_version": "1.1",
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401


def test_health_models_and_docs_stay_open(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(monkeypatch, [K1], rate_limit="1/minute")
    for _ in range(3):
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/models").status_code == 200
        assert c.get("/openapi.json").status_code == 200


def test_each_key_has_a_stable_non_secret_id(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(monkeypatch, [K1, K2])
    one = c.get("/api/whoami", headers={"X-API-Key": K1}).json()["key_id"]
    two = c.get("/api/whoami", headers={"X-API-Key": K2}).json()["key_id"]
    again = client(monkeypatch, [K2, K1]).get("/api/whoami", headers={"X-API-Key": K1}).json()["key_id"]
    assert len(one) == 12 and one != two and one == again  # the same across deployments
    assert one not in (K1, K2) and one not in KeyRing.from_keys([K1]).hashes[0].line()


def test_over_its_limit_a_key_gets_429_and_another_key_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(monkeypatch, [K1, K2], rate_limit="3/minute")
    answers = [post(c, K1, seed=i) for i in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert answers[0].headers["RateLimit-Limit"] == "3" and answers[2].headers["RateLimit-Remaining"] == "0"
    refused = answers[3]
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and refused.headers["RateLimit-Policy"] == "3;w=60"
    assert post(c, K2).status_code == 200


def test_without_keys_the_limit_is_per_client_address(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(monkeypatch, rate_limit="2/minute")
    assert [post(c, seed=i).status_code for i in range(3)] == [200, 200, 429]


def test_the_legacy_api_key_and_a_keys_file_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "deployments.ingress.api_keys"], input=K2, capture_output=True, text=True, check=True
    )
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# clients\n{made.stdout.strip()}  # k2\n")
    assert len(read_keys_file(keys_file)) == 1
    settings = load_settings(api_key=K1, api_keys_file=keys_file)
    ring = KeyRing.from_keys(settings.api_key_list, settings.api_keys_file)
    assert ring.key_id(K1) and ring.key_id(K2) and ring.key_id("k3-0123456789abcdef") is None


def test_a_new_key_is_generated_with_its_line() -> None:
    made = subprocess.run(
        [sys.executable, "-m", "deployments.ingress.api_keys"], capture_output=True, text=True, check=True
    )
    first, line = made.stdout.strip().splitlines()
    key = first.rsplit(" ", 1)[1]
    assert len(key) >= 32 and KeyHash.parse(line).matches(key)


def test_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(api_key=K1, api_keys=f"{K1},{K2}")
    assert K1 not in repr(settings) and K2 not in str(settings.model_dump())
    with pytest.raises(SettingsError) as bad:
        load_settings(api_keys="short-secret,another-short")
    assert "short-secret" not in str(bad.value) and "API_KEYS=<hidden>" in str(bad.value)


def test_cors_is_closed_by_default_and_opens_to_listed_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    closed = client(monkeypatch).options("/api/images/upload", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    c = client(
        monkeypatch, [K1], cors_allow_origins="https://app.example, https://other.example", rate_limit="1/minute"
    )
    opened = c.options("/api/images/upload", headers={**preflight, "Access-Control-Request-Headers": "X-API-Key"})
    assert opened.status_code == 200 and opened.headers["access-control-allow-origin"] == "https://app.example"
    refused = post(c)  # a browser can read the refusal too
    assert refused.status_code == 401 and refused.headers.get("access-control-allow-origin") is None
    refused = c.post("/api/images/upload", headers={"Origin": "https://app.example"}, files={"image": ("a", b"x")})
    assert refused.headers["access-control-allow-origin"] == "https://app.example"
