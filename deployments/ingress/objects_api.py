"""The objects route: a stored result, for the browser and the CLI, as a download that is never run."""

from __future__ import annotations

import mimetypes
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from configs import formats
from deployments.contracts.errors import ObjectNotFoundError
from deployments.contracts.handles import StorageHandle
from deployments.contracts.values import Folder
from deployments.ingress.api_keys import request_key_id
from deployments.ingress.schemas import ERRORS

# A stored object is the uploader's bytes, whatever its name says: never sniffed into HTML, never
# shown inline by a browser navigating to it, and sandboxed if it is (a JPEG with a <script> appended).
OBJECT_CSP = "default-src 'none'; sandbox"
# Only result objects are served to browsers: a folder, one path segment of safe characters.
OBJECT_KEY = re.compile("^(" + "|".join(re.escape(f.value) for f in Folder) + r")/[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}$")

OBJECT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {f.media_type: {} for f in formats.FORMATS}, "description": "The object"},
    **ERRORS,
}


def objects_router(storage: StorageHandle) -> APIRouter:
    router = APIRouter()

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
