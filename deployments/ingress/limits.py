"""Refusing work at the door, with our JSON, before reading a byte of the body: an over-limit declared
length (413), uploads past what one replica takes at once (503 with Retry-After) or past one client's
share (429), and bodies that do not arrive in time (408).

FastAPI's ``max_body_size`` stops reading a streamed body at the limit and raises a 413 that our error
handler turns into JSON. For a declared ``Content-Length`` over the limit, though, Starlette's limiter
swaps whatever the application answers for a plain-text 413. This outermost layer answers that case
itself, through the same ``respond`` as every other refusal (request id and metric included).

An upload holds a slot while its body trickles in, so a client that sends slowly on purpose could
hold every slot: ``ConcurrentUploadLimit`` gives one client address at most ``per_client`` of them,
and ``BodyDeadline`` ends a body not received within ``BODY_TIMEOUT_S`` with 408, freeing its slot.
Every decision is on the route path (``open_paths.route_path``), wherever the app is mounted.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deployments.contracts.errors import (
    BodyTimeoutError,
    OverloadedError,
    ServiceError,
    TooManyUploadsError,
    UploadTooLargeError,
)
from deployments.ingress.client_address import ClientAddresses
from deployments.ingress.open_paths import route_path

Respond = Callable[[ServiceError], Response]


def is_upload(scope: Scope) -> bool:
    """Any POST under ``/api/``: the requests that carry a body worth limiting."""
    return scope["type"] == "http" and scope.get("method") == "POST" and route_path(scope).startswith("/api/")


class DeclaredLengthLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, respond: Respond) -> None:
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
    """At most ``limit`` uploads in this replica at once, and at most ``per_client`` from one client
    address; past either, the next is answered at once (503 overloaded / 429 too_many_uploads, both with
    Retry-After), its body unread. ``limit`` is kept below the deployment's ``max_ongoing_requests``, so
    health, the model list and the docs always find a slot, and the replica holds at most ``limit``
    bodies in memory."""

    def __init__(self, app: ASGIApp, limit: int, respond: Respond, per_client: int, clients: ClientAddresses) -> None:
        self.app = app
        self.limit = limit
        self.respond = respond
        self.per_client = per_client
        self.clients = clients
        self.running = 0  # one event loop per replica: no lock needed
        self.by_client: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_upload(scope):
            await self.app(scope, receive, send)
            return
        client = self.clients.address(scope)
        refusal: ServiceError | None = None
        if self.by_client[client] >= self.per_client:
            refusal = TooManyUploadsError(self.per_client)
        elif self.running >= self.limit:
            refusal = OverloadedError()
        if refusal is not None:
            await self.respond(refusal)(scope, receive, send)
            return
        self.running += 1
        self.by_client[client] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]


class BodyDeadline:
    """An upload's whole body must arrive within ``timeout_s`` of the request's start; if not, the
    client gets 408 ``request_timeout`` and the request ends (its slot with it). After the body is
    complete nothing is timed here: upscaling has its own deadline."""

    def __init__(self, app: ASGIApp, timeout_s: float, respond: Respond) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_upload(scope):
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        state = {"complete": False, "late": False, "answered": False}

        async def timed_receive() -> Message:
            if state["complete"]:
                return await receive()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0))
            except TimeoutError:
                state["late"] = True
                raise BodyTimeoutError(self.timeout_s) from None
            state["complete"] = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            if state["late"]:  # the app's own answer to the failed read: ours goes instead
                return
            state["answered"] = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not state["late"]:  # the body's deadline explains any failure after it passed
                raise
        if state["late"] and not state["answered"]:
            await self.respond(BodyTimeoutError(self.timeout_s))(scope, receive, send)
