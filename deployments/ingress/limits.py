"""Refusing an over-limit body by its declared length, with our JSON, before reading a byte of it.

FastAPI's ``max_body_size`` stops reading a streamed body at the limit and raises a 413 that our error
handler turns into JSON. For a declared ``Content-Length`` over the limit, though, Starlette's limiter
swaps whatever the application answers for a plain-text 413. This outermost layer answers that case
itself, so every refusal has the same JSON shape.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from deployments.ingress.errors import UploadTooLargeError, error_body


class DeclaredLengthLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length") if scope["type"] == "http" else None
        if declared is None or not declared.isdigit() or int(declared) <= self.max_bytes:
            await self.app(scope, receive, send)
            return
        error = UploadTooLargeError(self.max_bytes)
        body = json.dumps(error_body(error.message, error.code)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
