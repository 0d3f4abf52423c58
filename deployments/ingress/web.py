"""The web UI's side of the ingress: the static page, its security headers, stored objects for the
browser, and the monitoring summary.

The page is plain files (``serve_app/web/``, handed over by the app builder) served at ``/`` after
every API route, so ``/api/...`` always wins. Its responses carry a Content-Security-Policy that allows
only the page's own origin (plus ``blob:`` images: previews of the user's own files and fetched
results), no inline script or style, no framing. ``/docs`` keeps FastAPI's defaults (Swagger UI loads
its own assets), so the policy is set on the page's responses only.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from ray import serve
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from configs.settings import Settings
from deployments.contracts.errors import ObjectNotFoundError
from deployments.contracts.handles import JobsHandle, StorageHandle
from deployments.contracts.values import Folder
from deployments.flow.recent import Recent
from deployments.ingress.api_keys import request_key_id
from deployments.ingress.errors import documented_errors
from deployments.ingress.schemas import ErrorResponse
from deployments.ingress.stats import Stats

log = logging.getLogger("ray.serve")

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
NOT_THE_PAGE = ("/api/", "/docs", "/redoc", "/openapi.json")
# A stored object is the uploader's bytes, whatever its name says: never sniffed into HTML, never
# shown inline by a browser navigating to it, and sandboxed if it is (a JPEG with a <script> appended).
OBJECT_CSP = "default-src 'none'; sandbox"
# Only result objects are served to browsers: a folder, one path segment of safe characters.
OBJECT_KEY = re.compile("^(" + "|".join(re.escape(f.value) for f in Folder) + r")/[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}$")


OBJECT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {t: {} for t in ("image/png", "image/jpeg", "image/webp")}, "description": "The object"},
    **documented_errors(ErrorResponse),
}


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


def object_path(key: str) -> str:
    """The route that serves a stored result object to a browser or the CLI."""
    return "/api/objects/" + quote(key, safe="/'")


async def download_url(storage: StorageHandle, settings: Settings, key: str, owner: str | None = None) -> str:
    """Where a client downloads a result: a presigned, expiring URL from S3 storage, else (local storage,
    or storage that does not answer at once) this service's object route, which serves every backend.
    A presigned URL is made only for the object's ``owner`` (the caller's key id; None without keys):
    it bypasses every check of this service. A convenience: it never fails the upload it is part of,
    and local storage is not even asked."""
    if not settings.s3_bucket:
        return object_path(key)
    try:
        url = await asyncio.wait_for(storage.download_url.remote(key, owner=owner), 5.0)
    except Exception as exc:  # a replica that died under us, or a slow one: the route still works
        log.warning("no presigned URL for %s: %s", key, exc)
        return object_path(key)
    return url or object_path(key)


class Replicas:
    """Replica counts per deployment from the Serve controller, asked at most every ``ttl_s``."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self._at = -float("inf")
        self._value: dict[str, int] | None = None

    def _ask(self) -> dict[str, int] | None:
        app = serve.get_replica_context().app_name
        status = serve.status().applications.get(app)
        if status is None:
            return None
        return {
            name: int(d.replica_states.get("RUNNING", 0))  # type: ignore[call-overload]
            for name, d in status.deployments.items()
        }

    async def get(self) -> dict[str, int] | None:
        if time.monotonic() - self._at > self.ttl_s:
            self._at = time.monotonic()
            try:
                self._value = await asyncio.to_thread(self._ask)
            except Exception as exc:  # no controller (in-process tests) or a slow one: unknown, not an error
                log.debug("replica counts unavailable: %s", exc)
                self._value = None
        return self._value


JOBS_SCANNED = 50  # the newest jobs whose finished items /api/stats counts (each once)


async def count_job_items(jobs: JobsHandle, stats: Stats) -> None:
    """Job items are finished by the jobs consumer, not here: count those of the newest jobs from
    their records (each item once, by job id and index), so every replica sees the same job work."""
    views, _ = await jobs.list_jobs.remote(JOBS_SCANNED, None, None)  # owner None: every key's jobs
    for job in views:
        for item in job["items"]:
            if item.get("result") and item["status"] in ("success", "error"):
                stats.record_result(item["result"], f"{job['job_id']}:{item['index']}")


async def _or_none(probe: Callable[[], Awaitable[Any]], what: str) -> Any:
    try:
        return await asyncio.wait_for(probe(), 5.0)
    except Exception as exc:  # monitoring must answer even when a part of the service does not
        log.warning("/api/stats: %s unavailable: %s", what, exc)
        return None


def web_router(storage: StorageHandle, settings: Settings, stats: Stats, jobs: JobsHandle | None = None) -> APIRouter:
    router = APIRouter()
    replicas = Replicas()

    async def compute() -> dict[str, Any]:
        queue_depth = None
        spool = await _or_none(lambda: storage.spool_status.remote(), "spool status")  # None: no spool (local storage)
        if jobs is not None:
            await _or_none(lambda: count_job_items(jobs, stats), "job records")
            queue_depth = await _or_none(lambda: jobs.queue_depth.remote(), "queue depth")
        return {
            **stats.summary(),
            "quality_threshold": settings.quality_threshold,
            "upscale_scale": settings.upscale_scale,
            "storage": settings.storage_backend,
            "queue_depth": queue_depth,
            "spool_depth": spool.objects if spool is not None else None,
            "replicas": await replicas.get(),
            "generated_at": time.time(),
        }

    recent = Recent(compute, settings.stats_cache_s)

    @router.get("/api/stats")
    async def summary() -> dict[str, Any]:
        """What this ingress replica has processed (images per folder, quality scores, upscale success
        rate, processing time p50/p95 per minute), the settings that route images, queue depth (jobs
        waiting in the broker), spool depth (objects waiting for the bucket) and replicas. ``null``
        marks a figure this service cannot know now. One answer serves every caller for
        ``STATS_CACHE_S`` (``generated_at`` says when it was made): a flood of calls costs no more."""
        return await recent.get()

    @router.get("/api/objects/{key:path}", response_class=Response, responses=OBJECT_RESPONSES)
    async def stored_object(request: Request, key: str) -> Response:
        """A stored result (``<folder>/<name>``), for the browser and the CLI, as a download. With API keys,
        only the key that stored it gets it; any other key gets the 404 of a missing object. Keys outside
        the three result folders are refused."""
        if not OBJECT_KEY.fullmatch(key) or ".." in key:
            raise ObjectNotFoundError(key)
        data = await storage.get.remote(key, request_key_id(request))
        return Response(
            data, media_type=mimetypes.guess_type(key)[0] or "application/octet-stream", headers=download_headers(key)
        )

    return router


def download_headers(key: str) -> dict[str, str]:
    """A stored object's response headers: an attachment that is never sniffed or run."""
    name = key.rsplit("/", 1)[-1]  # OBJECT_KEY allows no quote or backslash in it
    return {
        "Cache-Control": "private, max-age=3600",
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": OBJECT_CSP,
    }


def mount_web(app: FastAPI, folder: Path) -> None:
    """Serve the page at ``/`` (``index.html`` for ``/``), after every API route."""
    app.mount("/", StaticFiles(directory=folder, html=True), name="web")
