"""Where a client downloads a stored result: shared by every route that shows one (uploads, jobs)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

from deployments.contracts.handles import StorageHandle

log = logging.getLogger("ray.serve")

ASK_TIMEOUT_S = 5.0  # a download URL is a convenience: never wait long for one


def object_path(key: str) -> str:
    """The route that serves a stored result object to a browser or the CLI."""
    return "/api/objects/" + quote(key, safe="/'")


class Downloads:
    """Download URLs from storage: a presigned, expiring URL where storage gives one (S3), else this
    service's object route, which serves every backend. Whether storage presigns at all is storage's
    answer, asked once; with a backend that never does (local), no upload pays a call for its URL.

    A presigned URL is made only for the object's ``owner`` (the caller's key id; None without keys):
    it bypasses every check of this service. A convenience: it never fails the answer it is part of."""

    def __init__(self, storage: StorageHandle) -> None:
        self.storage = storage
        self._presigns: bool | None = None  # unknown until storage has answered once

    async def url(self, key: str, owner: str | None = None) -> str:
        try:
            if self._presigns is None:
                self._presigns = await asyncio.wait_for(self.storage.presigns.remote(), ASK_TIMEOUT_S)
            if not self._presigns:
                return object_path(key)
            url = await asyncio.wait_for(self.storage.download_url.remote(key, owner=owner), ASK_TIMEOUT_S)
        except Exception as exc:  # a replica that died under us, or a slow one: the route still works
            log.warning("no presigned URL for %s: %s", key, exc)
            return object_path(key)
        return url or object_path(key)
