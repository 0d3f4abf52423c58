"""Refusals at the door: uploads past what a replica takes at once are answered 503 at once, past one
client's share 429, in our JSON with Retry-After, while health and other GETs still pass; a body that
does not arrive in time is answered 408 and frees its slot; stalled bodies from one address leave
every other address served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

import deployments.ingress.api as api
from bench import images
from configs.settings import load_settings
from deployments.contracts.errors import ServiceError
from deployments.flow.flow import Flow
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.client_address import ClientAddresses
from deployments.ingress.limits import ConcurrentUploadLimit
from tests.fakes import FakeStorage, FakeUpscaler

KEY = "limits-key-0123456789"


def respond(exc: ServiceError) -> Response:
    return JSONResponse({"error": exc.code}, status_code=exc.status, headers=exc.headers())


def scope(method: str, path: str, address: str = "192.0.2.1", root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path, "headers": [],
            "client": (address, 1)}  # fmt: skip


def test_uploads_past_the_limit_are_refused_at_once_and_gets_pass() -> None:
    release = asyncio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            await release.wait()
        await Response("ok")(scope, receive, send)

    limit = ConcurrentUploadLimit(slow_app, 3, respond, per_client=2, clients=ClientAddresses())

    async def call(method: str, path: str, address: str = "192.0.2.1", root: str = "") -> tuple[int, dict[str, str]]:
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def receive() -> Any:
            raise AssertionError("the body was read")

        await limit(scope(method, root + path, address, root), receive, send)
        return sent[0]["status"], {k.decode(): v.decode() for k, v in sent[0]["headers"]}

    async def scenario() -> list[tuple[int, dict[str, str]]]:
        # Mounted under /upscaler, as Serve's route_prefix does: the route path decides.
        running = [asyncio.create_task(call("POST", "/api/images/upload", root="/upscaler")) for _ in range(2)]
        running.append(asyncio.create_task(call("POST", "/api/jobs", "192.0.2.2")))
        await asyncio.sleep(0.05)
        same_client = await call("POST", "/api/images/upload", root="/upscaler")
        replica_full = await call("POST", "/api/jobs", "192.0.2.3")
        health = await call("GET", "/api/health")
        release.set()
        return [same_client, replica_full, health, *(await asyncio.gather(*running))]

    same_client, replica_full, health, *done = asyncio.run(scenario())
    assert same_client[0] == 429 and same_client[1]["retry-after"] == "5"
    assert replica_full[0] == 503 and replica_full[1]["retry-after"] == "5"
    assert health[0] == 200 and [d[0] for d in done] == [200, 200, 200]
    assert limit.running == 0 and not limit.by_client


class Trickle:
    """A multipart upload whose body sends its first bytes, waits until released, then sends the image."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def body(self, boundary: str) -> AsyncIterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'.encode()
        self.started.set()
        await self.release.wait()
        yield images.png(8, 8) + f"\r\n--{boundary}--\r\n".encode()


def ingress(monkeypatch: pytest.MonkeyPatch, upscale_s: float = 0.0, **settings: Any) -> Any:
    monkeypatch.setattr(api, "IngressMetrics", lambda: type("M", (), {"__getattr__": lambda s, n: lambda *a: None})())
    config = load_settings(**settings)
    flow = Flow(FakeUpscaler(delay_s=upscale_s), FakeStorage(), config)
    return api.create_api(flow, config, keys=KeyRing.from_keys([KEY]))


def client(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 4321))
    return httpx.AsyncClient(transport=transport, base_url="http://t", headers={"X-API-Key": KEY}, timeout=30)


async def stalled_upload(c: httpx.AsyncClient, trickle: Trickle) -> httpx.Response:
    boundary = "stall"
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    return await c.post("/api/images/upload", content=trickle.body(boundary), headers=headers)


def test_thirty_stalled_bodies_from_one_address_leave_another_address_served(monkeypatch: pytest.MonkeyPatch) -> None:
    app = ingress(monkeypatch)  # defaults: 24 uploads per replica, 8 per client address

    async def scenario() -> tuple[list[int], httpx.Response, int]:
        trickle = Trickle()
        async with client(app, "203.0.113.9") as slow, client(app, "198.51.100.4") as other:
            stalled = [asyncio.create_task(stalled_upload(slow, trickle)) for _ in range(30)]
            await trickle.started.wait()
            await asyncio.sleep(0.2)  # every stalled request has reached the door
            files = {"image": ("b.png", images.png(8, 8), "image/png")}
            answered = await other.post("/api/images/upload", files=files)
            early = sum(task.done() for task in stalled)
            trickle.release.set()
            statuses = [r.status_code for r in await asyncio.gather(*stalled)]
            return statuses, answered, early

    statuses, answered, early = asyncio.run(scenario())
    assert answered.status_code == 200, answered.text
    assert early == 22 and sorted(statuses) == [200] * 8 + [429] * 22


def test_a_body_not_received_in_time_is_answered_408_and_frees_its_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    app = ingress(monkeypatch, body_timeout_s=0.3, max_concurrent_uploads=1)

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        trickle = Trickle()
        async with client(app, "203.0.113.9") as slow, client(app, "198.51.100.4") as other:
            late = await stalled_upload(slow, trickle)
            files = {"image": ("b.png", images.png(8, 8), "image/png")}
            return late, await other.post("/api/images/upload", files=files)

    late, next_upload = asyncio.run(scenario())
    body = late.json()
    assert late.status_code == 408 and body["error"] == "request_timeout" and "BODY_TIMEOUT_S" in body["message"]
    assert body["request_id"] and next_upload.status_code == 200


def test_only_the_body_is_timed_not_the_work_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    app = ingress(monkeypatch, upscale_s=0.6, body_timeout_s=0.2)

    async def scenario() -> httpx.Response:
        async with client(app, "203.0.113.9") as c:
            return await c.post("/api/images/upload", files={"image": ("b.png", images.png(8, 8), "image/png")})

    answer = asyncio.run(scenario())
    assert answer.status_code == 200 and answer.json()["result"]["folder"] == "upscaled"


def test_a_slow_but_steady_body_within_the_deadline_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    app = ingress(monkeypatch, body_timeout_s=5)
    data = images.png(16, 16)

    async def chunks() -> AsyncIterator[bytes]:
        head = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        for part in (head, data[:20], data[20:], b"\r\n--b--\r\n"):
            await asyncio.sleep(0.05)
            yield part

    async def scenario() -> httpx.Response:
        async with client(app, "203.0.113.9") as c:
            headers = {"content-type": "multipart/form-data; boundary=b"}
            return await c.post("/api/images/upload", content=chunks(), headers=headers)

    assert asyncio.run(scenario()).status_code == 200
