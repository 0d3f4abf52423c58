"""What a caller without a key may reach, decided on the route path, wherever the app is mounted.

Under a Serve ``route_prefix`` such as ``/upscaler`` the proxy keeps the full path in ``scope["path"]``
and puts the prefix in ``scope["root_path"]``; Starlette's router matches on the path with the prefix
removed (``get_route_path``), and so does every decision here: a test of ``scope["path"]`` would see
``/upscaler/api/jobs`` and miss it.

Deny by default. Open without a key:

- the page's static files: exactly the files of the web folder (and ``/``), listed when the app is
  built, so a file added to the folder is open and nothing else is;
- ``/api/health``, which then answers only ``{"status": …}`` (``status_only``): a load balancer needs
  the verdict, a stranger has no use for the reasons and the spool's figures;
- the API's description (``/docs``, ``/openapi.json`` and the docs' own assets) and the image formats
  (``/api/formats``, which the page builds its choices from): the same text as the repository's code,
  no data, computed once; a browser cannot attach ``X-API-Key`` to a navigation, so behind a key
  the docs could not be read at all.

Everything else (``/api/stats``, ``/api/models`` and ``/api/limits`` included, and any path that matches
no route) needs a key when keys are configured. ``/api/limits`` is no secret, but only a caller with a
key can submit the work it sizes, so it follows the rule of ``/api/models`` rather than widen this list.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette._utils import get_route_path  # the router's own function: our decision and its match agree
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Scope, Send

from deployments.ingress.docs import DOCS_PATHS

HEALTH = "/api/health"
DOCS = DOCS_PATHS  # the docs pages, their assets and the schema
FORMATS = "/api/formats"


def route_path(scope: Scope) -> str:
    """The path the app's router matches: ``scope["path"]`` without ``scope["root_path"]``."""
    return get_route_path(scope)


class OpenPaths:
    """The paths anyone may fetch: the page's files (from ``web_dir``) and the API's description."""

    def __init__(self, web_dir: Path | None = None) -> None:
        files = sorted(p for p in web_dir.rglob("*") if p.is_file()) if web_dir is not None else []
        page = {"/" + p.relative_to(web_dir).as_posix() for p in files} if web_dir is not None else set()
        self.paths = frozenset(page | ({"/"} if "/index.html" in page else set()) | DOCS | {FORMATS})

    def __contains__(self, path: object) -> bool:
        return path in self.paths


def status_only(send: Send) -> Send:
    """``send`` for a health answer to a caller without a key: the same status code, and a JSON body
    that keeps only ``status`` (the route's body is small: it is held until complete)."""
    start: Message | None = None
    body = bytearray()

    async def sending(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body", False):
            return
        await send({**start, "headers": _json_headers(start, len(public := _public(bytes(body))))})
        await send({"type": "http.response.body", "body": public})

    return sending


def _public(body: bytes) -> bytes:
    try:
        status = json.loads(body).get("status", "unknown")
    except (ValueError, AttributeError):
        status = "unknown"
    return json.dumps({"status": status}).encode()


def _json_headers(start: Message, length: int) -> list[tuple[bytes, bytes]]:
    headers = MutableHeaders(raw=list(start.get("headers", [])))
    headers["content-length"] = str(length)
    headers["content-type"] = "application/json"
    return headers.raw
