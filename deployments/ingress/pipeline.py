"""One upload's path: inspect → score → store as is, or upscale → store; failures keep the original.

The route is chosen from the header alone. A good image is fully decoded once to prove it is intact
and stored byte for byte; a small one is decoded to pixels and sent to the upscaler. If upscaling fails
for any reason (an exception in the model, out of memory, a replica that died) the original is stored
under ``couldn't_upscale/`` and the answer says so: an accepted image is never lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from configs.settings import Settings
from deployments.contracts import EncodedImage, Folder, ModelSummary, Status, StoredObject, UpscaledImage
from deployments.ingress import decode
from deployments.ingress.errors import UnknownModelError, UnknownOutputFormatError
from deployments.ingress.metrics import IngressMetrics
from deployments.ingress.schemas import UploadResponse, UploadResult
from deployments.storage.keys import sanitise_stem

log = logging.getLogger("ray.serve")

OUTPUT_FORMATS = ("png", "webp", "jpeg")


@dataclass
class Stopwatch:
    started: float = field(default_factory=time.perf_counter)
    laps: dict[str, float] = field(default_factory=dict)
    _last: float = 0.0

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - (self._last or self.started)) * 1000, 2)
        self._last = now

    def total(self) -> dict[str, float]:
        return {**self.laps, "total": round((time.perf_counter() - self.started) * 1000, 2)}


def output_digest(source_digest: str, model: str, scale: int, extension: str) -> str:
    """The content address of an upscaled output: what it was made from and how."""
    return hashlib.sha256(f"{source_digest}:{model}:x{scale}:{extension}".encode()).hexdigest()


class Pipeline:
    def __init__(self, upscaler: Any, storage: Any, settings: Settings) -> None:
        self.upscaler = upscaler
        self.storage = storage
        self.settings = settings
        self.metrics = IngressMetrics()
        self._models: list[ModelSummary] | None = None

    async def models(self) -> list[ModelSummary]:
        """The upscaler's catalogue (the same on every replica), fetched once."""
        if self._models is None:
            self._models = await self.upscaler.models.remote()
        return self._models

    async def choose_model(self, name: str | None) -> ModelSummary:
        models = await self.models()
        wanted = name or next(m.name for m in models if m.default)
        for model in models:
            if model.name == wanted:
                return model
        raise UnknownModelError(wanted, [m.name for m in models])

    async def process(
        self, data: bytes, filename: str | None, request_id: str, model: str | None = None, fmt: str | None = None
    ) -> UploadResponse:
        if fmt is not None and fmt not in OUTPUT_FORMATS:
            raise UnknownOutputFormatError(fmt, OUTPUT_FORMATS)
        chosen = await self.choose_model(model)
        clock = Stopwatch()
        max_pixels = self.settings.max_image_pixels
        probe = await asyncio.to_thread(decode.inspect, data, max_pixels)
        digest = hashlib.sha256(data).hexdigest()
        stem = sanitise_stem(filename)
        score = decode.quality_score(probe.width, probe.height)
        original = EncodedImage(data, probe.extension, probe.content_type, probe.width, probe.height)
        clock.lap("inspect")

        upscaled: UpscaledImage | None = None
        if score >= self.settings.quality_threshold:
            await asyncio.to_thread(decode.verify, probe, max_pixels)
            clock.lap("verify")
            folder, status = Folder.GOOD_QUALITY, Status.SUCCESS
            stored: StoredObject = await self.storage.put.remote(folder, stem, digest, original)
            message = "Image quality is good; stored as uploaded."
        else:
            decoded = await asyncio.to_thread(decode.decode, probe, max_pixels)
            clock.lap("decode")
            try:
                upscaler = self.upscaler.options(multiplexed_model_id=chosen.name)
                upscaled = await upscaler.upscale.remote(decoded, fmt)
            except Exception as exc:  # whatever broke upscaling, the original must still be kept
                log.warning("request %s: upscaling failed, keeping the original: %s", request_id, exc)
                folder, status = Folder.COULDNT_UPSCALE, Status.ERROR
                clock.lap("upscale")
                stored = await self.storage.put.remote(folder, stem, digest, original)
                message = "Upscaling failed; the original image was stored in couldn't_upscale/."
            else:
                clock.lap("upscale")
                folder, status = Folder.UPSCALED, Status.SUCCESS
                out_digest = output_digest(digest, upscaled.model, upscaled.scale, upscaled.image.extension)
                stored = await self.storage.put.remote(folder, stem, out_digest, upscaled.image)
                message = f"Image upscaled ×{upscaled.scale} and stored."
        clock.lap("store")
        timings = clock.total()
        if upscaled:
            timings.update(
                model=round(upscaled.upscale_seconds * 1000, 2), encode=round(upscaled.encode_seconds * 1000, 2)
            )
        output = upscaled.image if upscaled else original
        self.metrics.upload(folder, status, score, timings["total"] / 1000)
        log.info(
            "request %s: %s %dx%d score %.3f → %s (%.0f ms)",
            request_id,
            stem,
            probe.width,
            probe.height,
            score,
            stored.key,
            timings["total"],
        )
        return UploadResponse(
            success=True,
            message=message,
            result=UploadResult(
                original_key=stem + "." + probe.extension,
                status=status.value,
                folder=folder.value,
                s3_url=stored.url,
                quality_score=round(score, 6),
                upscale_scale=None if folder is Folder.GOOD_QUALITY else chosen.scale,
                processed_at=datetime.now(UTC),
                key=stored.key,
                request_id=request_id,
                width=probe.width,
                height=probe.height,
                output_width=output.width,
                output_height=output.height,
                size_bytes=stored.size,
                model=None if folder is Folder.GOOD_QUALITY else chosen.name,
                precision=upscaled.precision if upscaled else None,
                tiles=upscaled.tiles if upscaled else None,
                duplicate=not stored.created,
                timings_ms=timings,
            ),
        )

    async def unavailable_reasons(self, timeout_s: float = 5.0) -> list[str]:
        checks = {"upscaler": self.upscaler.unavailable_reason, "storage": self.storage.unavailable_reason}

        async def ask(name: str, method: Any) -> str | None:
            try:
                reason: str | None = await asyncio.wait_for(method.remote(), timeout_s)
            except TimeoutError:
                return f"{name}: no replica answered within {timeout_s:g} s"
            except Exception as exc:
                return f"{name}: {type(exc).__name__}: {exc}"
            return f"{name}: {reason}" if reason else None

        results = await asyncio.gather(*(ask(n, m) for n, m in checks.items()))
        return [r for r in results if r]
