"""Refusing an over-limit body by its declared length, with our JSON, before reading a byte of it.

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

from deployments.errors import ServiceError, UploadTooLargeError


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
