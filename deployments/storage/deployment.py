"""The storage deployment: owns the backend client and the spool, and keeps their blocking calls off
the event loop.

With S3, a write the bucket cannot take now (unreachable, timeout, 5xx) goes to the durable local spool
(``deployments/storage/spool.py``) and is answered as stored with ``pending=True``: the key and URL are
final, and a drainer thread delivers it in order once the bucket answers. A local folder has no spool
(the spool would sit on the same disk).

Ownership (with API keys): every stored result gets a zero-byte marker ``owners/<key id>/<object key>``
written create-only right after the object, through the same path (bucket, or spool). Markers rather
than S3 user metadata because one content-addressed object may belong to several keys (two keys that
upload the same bytes share the object and both own it), metadata cannot be changed without rewriting
the object, and markers work the same on both backends and through the spool. The object is written
first, so a marker never points at nothing; a retry writes whatever is missing. ``created`` in the
answer is about the caller: False only when its own marker was there already (``duplicate: true``).
``get``/``download_url`` with an owner answer only for objects that owner stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging

from ray import serve

from configs.settings import Settings
from deployments.contracts.errors import (
    ObjectNotFoundError,
    SpoolFullError,
    StorageConflictError,
    StorageError,
    StorageUnreachableError,
)
from deployments.contracts.values import EncodedImage, Folder, SpoolStatus, StoredObject
from deployments.flow.recent import Recent
from deployments.storage.backend import Backend
from deployments.storage.drain import BucketState, Drainer
from deployments.storage.keys import (
    derived_digest,
    is_job_input_key,
    job_input_key,
    object_key,
    owner_key,
    sanitise_stem,
)
from deployments.storage.local import LocalBackend
from deployments.storage.metrics import StorageMetrics
from deployments.storage.s3 import S3Backend
from deployments.storage.spool import DrainPass, Spool

log = logging.getLogger("ray.serve")

DOWNLOAD_URL_EXPIRY_S = 3600  # presigned result URLs: long enough to look at and download a batch
MARKER_TYPE = "application/x-owner-marker"


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
        self.metrics = StorageMetrics()
        self.state = BucketState()
        self.spool: Spool | None = None
        self.drainer: Drainer | None = None
        if settings.s3_bucket:
            self.spool = Spool(settings.spool_dir, settings.spool_max_bytes)
            self.drainer = Drainer(self.spool, self.backend, self.state, self._report)
            self.drainer.start()
        self._probe = Recent(self._probe_writable, settings.health_cache_s)
        log.info("storage backend: %s, spool: %s", self.backend.name, "on" if self.spool else "off")

    async def put(
        self,
        folder: Folder,
        filename: str | None,
        source_digest: str,
        image: EncodedImage,
        variant: str | None = None,
        owner: str | None = None,
    ) -> StoredObject:
        """Store ``image`` under ``<folder>/<sanitised name>-<digest>.<ext>``; the digest is the source's,
        or derived from it and ``variant`` (how the image was made from it). Create-only, idempotent.
        ``owner`` (an API key's id; None without keys) becomes an owner of the object.

        A made object (``variant`` set) may already be stored with other bytes by an earlier try that ran
        in another precision or on another device: that is the same logical output, so it is answered as
        already stored (``created=False``), never as a conflict."""
        stem = sanitise_stem(filename)
        key = object_key(folder, stem, derived_digest(source_digest, variant), image.extension)
        try:
            stored = await self._write(key, image)
        except StorageConflictError:
            if variant is None:
                raise
            log.info("%s: the same output was stored by an earlier try with other bytes; keeping it", key)
            stored = await asyncio.to_thread(self.backend.existing, key)
        if owner is not None:
            marker = await asyncio.to_thread(self._write_blocking, owner_key(owner, key), b"", MARKER_TYPE, {})
            stored = dataclasses.replace(stored, created=stored.created or marker.created)
        return dataclasses.replace(stored, stem=stem)

    async def put_job_input(self, job_id: str, index: int, image: EncodedImage) -> StoredObject:
        """Keep a job's accepted input durably until the consumer has processed it."""
        return await self._write(job_input_key(job_id, index, image.extension), image)

    async def delete_job_input(self, key: str) -> bool:
        """Remove a job's input once its item has ended (its result, or its original in
        couldn't_upscale/, is stored under its own key). Only ``jobs/`` keys are ever deleted. An input
        still waiting in this node's spool is removed from it (after a delivery in progress, which the
        bucket delete then undoes); deleting what is already gone is not an error."""
        if not is_job_input_key(key):
            raise ValueError(f"{key!r} is not a job input")
        if self.spool is not None and await asyncio.to_thread(self.spool.discard, key):
            return True
        await asyncio.to_thread(self.backend.delete, key)
        return True

    async def get(self, key: str, owner: str | None = None) -> bytes:
        """The object's bytes; ``ObjectNotFoundError`` when there is none or, with ``owner``, when that
        key did not store it (the same answer, so another key's objects cannot even be probed)."""
        return await asyncio.to_thread(self._read_owned, key, owner)

    def _read_owned(self, key: str, owner: str | None) -> bytes:
        if owner is not None and not self._owns(key, owner):
            raise ObjectNotFoundError(key)
        return self._read(key)

    def _owns(self, key: str, owner: str) -> bool:
        try:
            self._read(owner_key(owner, key))
        except ObjectNotFoundError:
            return False
        return True

    def _read(self, key: str) -> bytes:
        pending = self.spool.read(key) if self.spool else None
        return pending if pending is not None else self.backend.get(key)

    async def presigns(self) -> bool:
        """Whether ``download_url`` can give URLs: the ingress asks once, so that with a backend that
        never does (local) no upload pays a call for it. Fixed for the replica's life."""
        return self.backend.presigns

    async def download_url(
        self, key: str, expires_s: int = DOWNLOAD_URL_EXPIRY_S, owner: str | None = None
    ) -> str | None:
        """A presigned, expiring URL for a result (S3); None where the service must serve it (local), or
        when ``owner`` is given and did not store it (a presigned URL bypasses every other check)."""
        return await asyncio.to_thread(self._download_url, key, expires_s, owner)

    def _download_url(self, key: str, expires_s: int, owner: str | None) -> str | None:
        if owner is not None and not self._owns(key, owner):
            return None
        return self.backend.download_url(key, expires_s)

    async def _write(self, key: str, image: EncodedImage) -> StoredObject:
        metadata = {"width": str(image.width), "height": str(image.height)}
        return await asyncio.to_thread(self._write_blocking, key, image.data, image.content_type, metadata)

    def _write_blocking(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> StoredObject:
        if self.spool is None:
            return self.backend.put(key, data, content_type, metadata)
        if not self.state.down:
            try:
                return self.backend.put(key, data, content_type, metadata)
            except StorageUnreachableError:
                self.state.mark_down()
        created = self.spool.add(key, data, content_type, metadata)
        self.metrics.spooled()
        digest = hashlib.sha256(data).hexdigest()
        return StoredObject(key, self.backend.url(key), len(data), digest, created=created, pending=True)

    async def spool_status(self) -> SpoolStatus | None:
        return await asyncio.to_thread(self._spool_status)

    def _spool_status(self) -> SpoolStatus | None:
        if self.spool is None:
            return None
        totals = self.spool.totals()
        return SpoolStatus(
            objects=totals.objects,
            bytes=totals.bytes,
            oldest_age_s=self.spool.oldest_age_s(),
            max_bytes=self.spool.max_bytes,
            bucket_reachable=not self.state.down,
        )

    def _report(self, done: DrainPass) -> None:
        """Called by the drainer after every pass: the spool's gauges stay current."""
        self.metrics.drained(done.delivered)
        self.metrics.dead_lettered(len(done.dead))
        status = self._spool_status()
        if status is not None:
            self.metrics.status(status)

    async def unavailable_reason(self) -> str | None:
        """``None`` when uploads can be stored now (in the bucket, or in the spool while it has room),
        else why not (for ``/api/health``). The probe (a bucket HEAD, a spool or folder write) is reused
        for ``HEALTH_CACHE_S``, shared by concurrent callers: every ingress replica asks."""
        return await self._probe.get()

    async def _probe_writable(self) -> str | None:
        try:
            await asyncio.to_thread(self._check_writable)
        except StorageError as exc:
            return exc.message
        return None

    def _check_writable(self) -> None:
        if self.spool is None:
            self.backend.check_writable()
            return
        self.spool.check_writable()
        try:
            self.backend.check_writable()
        except StorageUnreachableError:
            self.state.mark_down()
            if self.spool.full():
                raise SpoolFullError(self.spool.max_bytes) from None

    def check_health(self) -> None:
        """Liveness of this replica: its client can sign requests, the spool folder takes a write and
        its drainer runs. An unreachable bucket or a full spool is the world's fault, not this
        replica's (restarting would not help), so ``/api/health`` reports those (503) instead."""
        self.backend.check_client()
        if self.spool is not None:
            self.spool.check_writable()
        if self.drainer is not None and not self.drainer.alive():
            raise StorageError("the spool drainer thread has stopped")
