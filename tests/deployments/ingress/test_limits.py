"""Refusals at the door: uploads past what a replica takes at once are answered 503 at once, in our
JSON with Retry-After, while health and other GETs still pass."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from deployments.contracts.errors import ServiceError
from deployments.ingress.limits import ConcurrentUploadLimit


def respond(exc: ServiceError) -> Response:
    return JSONResponse({"error": exc.code}, status_code=503, headers=exc.headers())


def scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": []}


def test_uploads_past_the_limit_are_refused_at_once_and_gets_pass() -> None:
    release = asyncio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            await release.wait()
        await Response("ok")(scope, receive, send)

    limit = ConcurrentUploadLimit(slow_app, 2, respond)

    async def call(method: str, path: str) -> tuple[int, dict[str, str]]:
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def receive() -> Any:
            raise AssertionError("the body was read")

        await limit(scope(method, path), receive, send)
        return sent[0]["status"], {k.decode(): v.decode() for k, v in sent[0]["headers"]}

    async def scenario() -> list[tuple[int, dict[str, str]]]:
        running = [asyncio.create_task(call("POST", "/api/images/upload")) for _ in range(2)]
        await asyncio.sleep(0.05)
        refused = await call("POST", "/api/jobs")
        health = await call("GET", "/api/health")
        release.set()
        return [refused, health, *(await asyncio.gather(*running))]

    refused, health, *done = asyncio.run(scenario())
    assert refused[0] == 503 and refused[1]["retry-after"] == "5"
    assert health[0] == 200 and [d[0] for d in done] == [200, 200] and limit.running == 0
