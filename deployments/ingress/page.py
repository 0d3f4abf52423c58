"""The web page: its static files, served at ``/`` after every API route, and their security headers.

The page is plain files (``serve_app/web/``, handed over by the app builder), so ``/api/...`` always
wins. Its responses carry a Content-Security-Policy that allows only the page's own origin (plus
``blob:`` images: previews of the user's own files and fetched results), no inline script or style, no
framing. ``/docs`` carries its own policy (``docs.DOCS_CSP``: this origin only, plus ``data:`` images for
Swagger UI's icons), so this one is set on the page's responses only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
NOT_THE_PAGE = ("/api/", "/docs", "/openapi.json")


class PageHeaders:
    """ASGI middleware: the page's security headers on every response that is not the API's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(NOT_THE_PAGE):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *PAGE_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def mount_web(app: FastAPI, folder: Path) -> None:
    """Serve the page at ``/`` (``index.html`` for ``/``), after every API route."""
    app.mount("/", StaticFiles(directory=folder, html=True), name="web")
