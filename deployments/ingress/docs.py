"""The API's interactive docs (Swagger UI at ``/docs``), served from this app alone.

FastAPI's default pages pull Swagger UI and ReDoc from a CDN (and Swagger UI asks a third-party
validator about the schema): an air-gapped operator gets a blank page, and every visitor's browser
tells the CDN about the service. The assets come from ``fastapi-offline`` instead, a kept package that
ships the release build of Swagger UI 5 (MIT; chosen over ``swagger-ui-bundle``, whose Swagger UI 4.15
is three years older, and over copying the files in, which nobody would update). Nothing is downloaded
at run time. There is no ``/redoc``: ReDoc's bundle fetches its logo from its own CDN.

The page carries no inline script or style: Swagger UI is started by ``/docs/swagger-init.js``, so the
docs keep a Content-Security-Policy as strict as the web page's (``DOCS_CSP``: this origin only, plus
``data:`` images, which Swagger UI's stylesheet uses for its icons). A headless Chromium opened, expanded
and authorised it under that policy with no violation (tests/integration/test_docs_browser.py).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
INIT_URL = "/docs/swagger-init.js"
# Every path the docs need, open without a key like the docs themselves (``open_paths.DOCS``).
DOCS_PATHS = frozenset({"/docs", "/openapi.json", INIT_URL, *(f"{ASSETS_URL}/{n}" for n in ASSET_FILES)})
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

# validatorUrl null: no badge fetched from validator.swagger.io. The schema's URL is relative to the page,
# so it is right under any route prefix.
SWAGGER_INIT = """window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", window.location.href).href,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{head}</head>\n'
        f"<body>{body}</body></html>\n"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_CSP})


def add_docs(app: FastAPI) -> None:
    """``/docs`` over assets served by this app (create the app with ``docs_url=None`` and
    ``redoc_url=None``, so FastAPI's CDN pages are not there)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        head = f'<link rel="stylesheet" href="{root}{ASSETS_URL}/swagger-ui.css">'
        head += f'<link rel="icon" href="{root}{ASSETS_URL}/favicon.png">'
        body = f'<div id="swagger-ui"></div><script src="{root}{ASSETS_URL}/swagger-ui-bundle.js"></script>'
        body += f'<script src="{root}{INIT_URL}"></script>'
        return _page(f"{app.title} - Swagger UI", head, body)

    @app.get(INIT_URL, include_in_schema=False)
    async def swagger_init() -> Response:
        return Response(SWAGGER_INIT, media_type="text/javascript")
