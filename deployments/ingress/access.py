"""Who may call the API, and how often: API keys and rate limits, before a byte of the body is read.

A pure ASGI layer, outside FastAPI's body parsing: a request to a protected route without a valid
``X-API-Key`` (when keys are configured) is answered 401, and one over its rate limit 429 with
``Retry-After`` and ``RateLimit-*`` headers — both through the ingress's ``Responder``, so the JSON,
request id and metrics are those of every other refusal. A request let in carries its key's id in
``scope["state"]["key_id"]`` (read it with ``keys.request_key_id``) and the RateLimit headers on its
response. Health, the model list, stats, docs and the web UI stay open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deployments.contracts.errors import RateLimitedError, ServiceError, UnauthorizedError
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.ratelimit import Limiter

OPEN_PATHS = frozenset({"/api/health", "/api/models", "/api/stats"})


def protected(scope: Scope) -> bool:
    path = str(scope.get("path", ""))
    return (
        scope["type"] == "http"
        and scope.get("method") != "OPTIONS"
        and path.startswith("/api/")
        and (path not in OPEN_PATHS)
    )


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class AccessControl:
    def __init__(
        self, app: ASGIApp, keys: KeyRing, limiter: Limiter | None, respond: Callable[[ServiceError], Response]
    ) -> None:
        self.app, self.keys, self.limiter, self.respond = app, keys, limiter, respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not protected(scope):
            await self.app(scope, receive, send)
            return
        key_id = None
        if self.keys:
            presented = Headers(scope=scope).get("x-api-key", "")
            key_id = await asyncio.to_thread(self.keys.key_id, presented)  # scrypt on first sight
            if key_id is None:
                await self.respond(UnauthorizedError())(scope, receive, send)
                return
        scope.setdefault("state", {})["key_id"] = key_id
        if self.limiter is not None:
            decision = await self.limiter.hit(f"key:{key_id}" if key_id else f"addr:{client_address(scope)}")
            if decision is not None and not decision.allowed:
                error = RateLimitedError(self.limiter.spec, decision.reset_s, decision.headers())
                await self.respond(error)(scope, receive, send)
                return
            if decision is not None:
                send = _with_headers(send, decision.headers())
        await self.app(scope, receive, send)


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in extra.items():
                headers.setdefault(name, value)
        await send(message)

    return sending
