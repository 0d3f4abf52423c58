"""Where a client downloads a stored result: shared by every route that shows one (uploads, jobs)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

from configs.settings import Settings
from deployments.contracts.handles import StorageHandle

log = logging.getLogger("ray.serve")

ASK_TIMEOUT_S = 5.0  # a download URL is a convenience: never wait long for one


def object_path(key: str) -> str:
    """The route that serves a stored result object to a browser or the CLI."""
    return "/api/objects/" + quote(key, safe="/'")


class Downloads:
    """Download URLs: a presigned, expiring URL from S3 storage, else (local storage, or storage that
    does not answer at once) this service's object route, which serves every backend.

    A presigned URL is made only for the object's ``owner`` (the caller's key id; None without keys):
    it bypasses every check of this service. A convenience: it never fails the answer it is part of,
    and local storage is not even asked."""

    def __init__(self, storage: StorageHandle, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings

    async def url(self, key: str, owner: str | None = None) -> str:
        if not self.settings.s3_bucket:
            return object_path(key)
        try:
            url = await asyncio.wait_for(self.storage.download_url.remote(key, owner=owner), ASK_TIMEOUT_S)
        except Exception as exc:  # a replica that died under us, or a slow one: the route still works
            log.warning("no presigned URL for %s: %s", key, exc)
            return object_path(key)
        return url or object_path(key)
