"""Keys and rate limits in-process (FastAPI TestClient over the real app, fake handles): checked before
the body is read, decided on the route path wherever the app is mounted, answered as JSON through the
one responder, per key, with the headers clients need; wrong keys cost nothing and are limited."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient

import deployments.ingress.api as api
from bench import images
from configs.settings import SettingsError, load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api_keys import KeyRing, request_key_id
from serve_app.app import WEB_DIR
from tests.fakes import FakeStorage, FakeUpscaler, Method

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


def make_app(
    monkeypatch: pytest.MonkeyPatch, keys: list[str] | None = None, storage: FakeStorage | None = None, **settings: Any
) -> FastAPI:
    monkeypatch.setattr(api, "IngressMetrics", NoMetrics)
    config = load_settings(**settings)
    flow = Flow(FakeUpscaler(), storage or FakeStorage(), config)
    return api.create_api(flow, config, [whoami()], KeyRing.from_keys(keys or []), web_dir=WEB_DIR)


def client(monkeypatch: pytest.MonkeyPatch, keys: list[str] | None = None, **settings: Any) -> TestClient:
    return TestClient(make_app(monkeypatch, keys, **settings))


def post(c: TestClient, key: str | None = None, seed: int = 0, path: str = "/api/images/upload") -> Any:
    headers = {"X-API-Key": key} if key else {}
    files = {"image": ("a.png", images.png(8, 8, seed=seed), "image/png")}
    return c.post(path, files=files, headers=headers)


def from_address(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A client whose requests come from ``address`` (the ASGI scope's ``client``)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 4321)), base_url="http://t")


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


@pytest.mark.parametrize("prefix", ["", "/upscaler"])
def test_with_keys_every_route_needs_one_wherever_the_app_is_mounted(
    monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    # Serve's proxy keeps the whole path and sets root_path to the route prefix; TestClient does the same.
    c = TestClient(make_app(monkeypatch, [K1], rate_limit="1/minute"), root_path=prefix)
    for _ in range(3):
        for path in ("/api/jobs", "/api/stats", "/api/models", "/api/whoami", "/api/objects/upscaled/a.png", "/x"):
            assert c.get(prefix + path).status_code == 401, path
        refused = post(c, path=prefix + "/api/images/upload")
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert c.get(prefix + "/api/models", headers={"X-API-Key": K1}).status_code == 200


@pytest.mark.parametrize("prefix", ["", "/upscaler"])
def test_the_page_and_the_api_description_stay_open(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    c = TestClient(make_app(monkeypatch, [K1], rate_limit="1/minute"), root_path=prefix)
    for _ in range(3):  # never counted against the rate limit either
        for path in ("/", "/index.html", "/app.css", "/js/main.js", "/favicon.svg", "/vendor/uplot/uPlot.min.css"):
            assert c.get(prefix + path).status_code == 200, path
        assert c.get(prefix + "/openapi.json").status_code == 200 and c.get(prefix + "/docs").status_code == 200
        assert c.get(prefix + "/api/formats").status_code == 200


def test_health_answers_a_caller_without_a_key_with_its_status_only(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = FakeStorage()
    storage.unavailable_reason = Method(lambda: "bucket vcs-private at 10.0.0.5 unreachable")
    c = TestClient(make_app(monkeypatch, [K1], storage, rate_limit="1/minute"), root_path="/upscaler")
    for _ in range(3):
        anyone = c.get("/upscaler/api/health")
        assert anyone.status_code == 503 and anyone.json() == {"status": "unhealthy"}
        assert int(anyone.headers["content-length"]) == len(anyone.content)
    owner = c.get("/upscaler/api/health", headers={"X-API-Key": K1})
    assert owner.status_code == 503 and "10.0.0.5" in owner.json()["reasons"][0]
    assert c.get("/upscaler/api/health", headers={"X-API-Key": "wrong-key-0123456789"}).status_code == 401
    open_api = client(monkeypatch, storage=storage).get("/api/health")  # no keys: the whole answer
    assert open_api.json()["reasons"]


def test_each_key_has_a_stable_non_secret_id(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(monkeypatch, [K1, K2])
    one = c.get("/api/whoami", headers={"X-API-Key": K1}).json()["key_id"]
    two = c.get("/api/whoami", headers={"X-API-Key": K2}).json()["key_id"]
    again = client(monkeypatch, [K2, K1]).get("/api/whoami", headers={"X-API-Key": K1}).json()["key_id"]
    assert len(one) == 12 and one != two and one == again  # the same across deployments
    assert one not in (K1, K2) and one != hashlib.sha256(K1.encode()).hexdigest()[:12]
    # The ids environment keys had before issue 18 (jobs are stored under them), computed by that code.
    assert (one, two) == ("4d6bbab12f46", "8f3aa017a125")


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


def test_wrong_keys_from_one_address_meet_a_429_and_another_address_is_not_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(monkeypatch, [K1])  # AUTH_FAILURE_LIMIT: 10/minute by default

    async def scenario() -> tuple[list[int], httpx.Response, httpx.Response]:
        async with from_address(app, "203.0.113.7") as guesser, from_address(app, "198.51.100.2") as owner:
            wrong = [
                (await guesser.get("/api/whoami", headers={"X-API-Key": f"guess-{i:04d}-0123456789"})).status_code
                for i in range(12)
            ]
            refused = await guesser.get("/api/whoami", headers={"X-API-Key": K1})  # no hashing past the budget
            return wrong, refused, await owner.get("/api/whoami", headers={"X-API-Key": K1})

    wrong, refused, other = asyncio.run(scenario())
    assert wrong == [401] * 10 + [429] * 2
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and "AUTH_FAILURE_LIMIT" in refused.json()["message"]
    assert other.status_code == 200 and other.json()["key_id"]


def test_a_missing_key_costs_no_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(monkeypatch, [K1])
    assert {c.get("/api/stats").status_code for _ in range(20)} == {401}
    assert c.get("/api/whoami", headers={"X-API-Key": K1}).status_code == 200


def test_a_wrong_key_costs_no_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    c = client(monkeypatch, [K1, K2])  # the keys' ids are computed here, once
    calls: list[int] = []
    real = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert [post(c, f"wrong-{i:03d}-0123456789").status_code for i in range(9)] == [401] * 9
    assert post(c, K1).status_code == 200 and calls == []


def test_a_thousand_wrong_keys_evict_no_valid_key(monkeypatch: pytest.MonkeyPatch) -> None:
    ring = KeyRing.from_keys([K1, K2])
    assert ring.key_id(K1) and ring.key_id(K2)
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: b"\0" * 32)  # any scrypt from now on misses
    assert all(ring.key_id(f"wrong-{i:05d}-0123456789") is None for i in range(1024))
    assert ring.key_id(K1) and ring.key_id(K2)


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


def test_a_listed_origin_may_send_an_idempotency_key_and_read_the_replay_marker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = client(monkeypatch, [K1], cors_allow_origins="https://app.example")
    ask = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "X-API-Key, Idempotency-Key"}  # fmt: skip
    assert c.options("/api/jobs", headers=ask).status_code == 200
    answer = c.get("/api/health", headers={"Origin": "https://app.example"})
    assert "idempotent-replayed" in answer.headers["access-control-expose-headers"].lower()
