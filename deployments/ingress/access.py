"""Who may call the API, and how often: API keys and rate limits, before a byte of the body is read.

A pure ASGI layer, outside FastAPI's body parsing, deciding on the route path (``open_paths``), so the
answer is the same wherever the app is mounted. With keys configured every route needs a valid
``X-API-Key`` except the ones ``OpenPaths`` lists and ``/api/health`` (which a caller without a key
sees as its status only); a wrong key is checked and limited per client address by ``KeyCheck``. A
request over ``RATE_LIMIT`` gets 429 with ``Retry-After`` and ``RateLimit-*`` headers, per key (per
client address without keys). Every refusal goes through the ingress's ``Responder``, so its JSON,
request id and metrics are those of every other refusal. A request let in carries its key's id in
``scope["state"]["key_id"]`` (read it with ``api_keys.request_key_id``) and the RateLimit headers on its
response. Health and the open paths are never counted against a rate limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from configs.settings import Settings
from deployments.contracts.errors import RateLimitedError, ServiceError
from deployments.ingress.api_keys import KeyRing
from deployments.ingress.client_address import ClientAddresses
from deployments.ingress.key_check import KeyCheck
from deployments.ingress.open_paths import HEALTH, OpenPaths, route_path, status_only
from deployments.ingress.ratelimit import Limiter


class AccessControl:
    def __init__(
        self,
        app: ASGIApp,
        keys: KeyCheck | None,
        limiter: Limiter | None,
        respond: Callable[[ServiceError], Response],
        open_paths: OpenPaths,
        clients: ClientAddresses,
    ) -> None:
        self.app, self.keys, self.limiter, self.respond = app, keys, limiter, respond
        self.open_paths, self.clients = open_paths, clients

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        if scope["type"] != "http" or path in self.open_paths:
            await self.app(scope, receive, send)
            return
        address = self.clients.address(scope)
        try:
            key_id = await self._key_id(scope, path, address)
            if path != HEALTH:
                send = await self._count(key_id, address, send)
        except ServiceError as refusal:
            await self.respond(refusal)(scope, receive, send)
            return
        if path == HEALTH and self.keys is not None and key_id is None:
            send = status_only(send)
        scope.setdefault("state", {})["key_id"] = key_id
        await self.app(scope, receive, send)

    async def _key_id(self, scope: Scope, path: str, address: str) -> str | None:
        """The caller's key id; ``None`` without keys configured, or for health asked without a key."""
        if self.keys is None:
            return None
        presented = Headers(scope=scope).get("x-api-key", "")
        if path == HEALTH and not presented:
            return None
        return await self.keys.key_id(presented, address)

    async def _count(self, key_id: str | None, address: str, send: Send) -> Send:
        """Counts the request against its rate limit; raises past it, else adds the headers."""
        if self.limiter is None:
            return send
        decision = await self.limiter.hit(f"key:{key_id}" if key_id else f"addr:{address}")
        if decision is None:
            return send
        if not decision.allowed:
            raise RateLimitedError(self.limiter.spec, decision.reset_s, decision.headers())
        return _with_headers(send, decision.headers())


@dataclass(frozen=True)
class AccessControlConfig:
    """What the middleware stack decides with, built once per app from the settings (``access_config``)."""

    key_check: KeyCheck | None
    limiter: Limiter | None
    open_paths: OpenPaths
    clients: ClientAddresses
    cors_origins: list[str]
    max_concurrent_uploads: int
    max_uploads_per_client: int
    body_timeout_s: float

    async def unavailable_reasons(self) -> list[str]:
        """Reasons the limits cannot be enforced now: each distinct counter store that does not answer."""
        limiters = [self.limiter, self.key_check.failures if self.key_check else None]
        reasons = await asyncio.gather(*(limiter.unavailable_reason() for limiter in limiters if limiter))
        return sorted({reason for reason in reasons if reason})


def access_config(
    settings: Settings, keys: KeyRing | None, web_dir: Path | None, limits_url: str
) -> AccessControlConfig:
    """Keys (checked with a per-address failure budget), limits and their shared counter store."""
    key_check = KeyCheck(keys, Limiter(settings.auth_failure_limit, limits_url)) if keys else None
    return AccessControlConfig(
        key_check=key_check,
        limiter=Limiter(settings.rate_limit, limits_url) if settings.rate_limit else None,
        open_paths=OpenPaths(web_dir),
        clients=ClientAddresses(settings.trusted_proxy_networks),
        cors_origins=settings.cors_origins,
        max_concurrent_uploads=settings.max_concurrent_uploads,
        max_uploads_per_client=settings.max_uploads_per_client,
        body_timeout_s=settings.body_timeout_s,
    )


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in extra.items():
                headers.setdefault(name, value)
        await send(message)

    return sending
