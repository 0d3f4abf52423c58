"""The storage deployment: owns the backend client and keeps its blocking calls off the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from ray import serve

from configs.settings import Settings
from deployments.contracts import EncodedImage, Folder, StoredObject
from deployments.errors import StorageError
from deployments.storage.backend import Backend
from deployments.storage.keys import derived_digest, job_input_key, object_key, sanitise_stem
from deployments.storage.local import LocalBackend
from deployments.storage.s3 import S3Backend

log = logging.getLogger("ray.serve")


def make_backend(settings: Settings) -> Backend:
    if settings.s3_bucket:
        return S3Backend(
            settings.s3_bucket, settings.aws_region, settings.s3_endpoint_url, settings.s3_addressing_style
        )
    return LocalBackend(settings.storage_dir)


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class Storage:
    def __init__(self, settings: Settings) -> None:
        self.backend = make_backend(settings)
        log.info("storage backend: %s", self.backend.name)

    async def put(
        self, folder: Folder, filename: str | None, source_digest: str, image: EncodedImage, variant: str | None = None
    ) -> StoredObject:
        """Store ``image`` under ``<folder>/<sanitised name>-<digest>.<ext>``; the digest is the source's,
        or derived from it and ``variant`` (how the image was made from it). Create-only, idempotent."""
        stem = sanitise_stem(filename)
        key = object_key(folder, stem, derived_digest(source_digest, variant), image.extension)
        stored = await self._write(key, image)
        return dataclasses.replace(stored, stem=stem)

    async def put_job_input(self, job_id: str, index: int, image: EncodedImage) -> StoredObject:
        """Keep a job's accepted input durably until the consumer has processed it."""
        return await self._write(job_input_key(job_id, index, image.extension), image)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.backend.get, key)

    async def _write(self, key: str, image: EncodedImage) -> StoredObject:
        metadata = {"width": str(image.width), "height": str(image.height)}
        return await asyncio.to_thread(self.backend.put, key, image.data, image.content_type, metadata)

    async def unavailable_reason(self) -> str | None:
        """``None`` when objects can be written now, else why not (for ``/api/health``)."""
        try:
            await asyncio.to_thread(self.backend.check_writable)
        except StorageError as exc:
            return str(exc)
        return None

    def check_health(self) -> None:
        """Replica liveness only. An unreachable bucket is the world's fault, not this replica's:
        failing here would make Serve restart healthy replicas in a loop, so it is reported by
        ``/api/health`` (503) instead."""
        if self.backend is None:
            raise StorageError("storage backend not initialised")
