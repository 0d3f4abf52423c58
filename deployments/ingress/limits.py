"""Refusing work at the door, with our JSON, before reading a byte of the body: an over-limit declared
length (413), and uploads past what one replica takes at once (503 with Retry-After).

FastAPI's ``max_body_size`` stops reading a streamed body at the limit and raises a 413 that our error
handler turns into JSON. For a declared ``Content-Length`` over the limit, though, Starlette's limiter
swaps whatever the application answers for a plain-text 413. This outermost layer answers that case
itself, through the same ``respond`` as every other refusal (request id and metric included).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from deployments.contracts.errors import OverloadedError, ServiceError, UploadTooLargeError


class DeclaredLengthLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, respond: Callable[[ServiceError], Response]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length") if scope["type"] == "http" else None
        if declared is None or not declared.isdigit() or int(declared) <= self.max_bytes:
            await self.app(scope, receive, send)
            return
        await self.respond(UploadTooLargeError(self.max_bytes))(scope, receive, send)


class ConcurrentUploadLimit:
    """At most ``limit`` uploads (any POST under ``/api/``) in this replica at once; the next is answered
    503 with Retry-After at once, its body unread. Kept below the deployment's ``max_ongoing_requests``,
    so health, the model list and the docs always find a slot: under overload they still answer at
    once, and the replica holds at most ``limit`` bodies in memory."""

    def __init__(self, app: ASGIApp, limit: int, respond: Callable[[ServiceError], Response]) -> None:
        self.app = app
        self.limit = limit
        self.respond = respond
        self.running = 0  # one event loop per replica: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        heavy = (
            scope["type"] == "http" and scope.get("method") == "POST" and str(scope.get("path", "")).startswith("/api/")
        )
        if not heavy:
            await self.app(scope, receive, send)
            return
        if self.running >= self.limit:
            await self.respond(OverloadedError())(scope, receive, send)
            return
        self.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1
