"""One image's path, shared by the upload route and the jobs consumer: inspect → score → route →
upscale → store, with its fallbacks. Plain async code over injected handles; it returns an ``Outcome``
and raises the named errors of ``deployments/contracts/errors.py`` — no HTTP in it.

An image whose resolution score reaches the threshold is fully decoded once to prove it is intact (a
JPEG as its cheap 1/8 draft); a smaller one is decoded to pixels. Either way the no-reference metrics
(``deployments/flow/quality.py``) are measured on what was decoded, and the quality policy
(``configs/quality_policy.yaml``) decides: store as uploaded, or upscale with the fidelity or the
real-world model (an explicit ``model`` in the request always wins). The default policy routes store
vs upscale exactly as the seed did, on resolution alone. The measured JPEG quality and noise travel
with the pixels to the upscaler (``Degradation``), where a degradation-aware model is conditioned on
them. If upscaling fails for any reason (an exception in the model, out of memory, a replica that
died) the original is stored under ``couldn't_upscale/`` and the outcome says so: an accepted image is
never lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from ray.serve.exceptions import BackPressureError

from configs import formats
from configs.quality_policy import Decision, QualityPolicy, load_policy, scale_for
from configs.settings import Settings
from deployments.contracts.errors import (
    OverloadedError,
    StorageError,
    UnknownModelError,
    UnknownOutputFormatError,
    UpscaleDeadlineError,
)
from deployments.contracts.handles import Ask, StorageHandle, UpscalerHandle
from deployments.contracts.values import (
    DecodedImage,
    Degradation,
    EncodedImage,
    Folder,
    ModelSummary,
    Outcome,
    SpoolStatus,
    Status,
    StoredObject,
    UpscaledImage,
)
from deployments.flow import inspection, quality
from deployments.flow.families import family_model, unserved
from deployments.flow.resend import REPLICA_FAILURES, store_attempts, upscale_attempts

log = logging.getLogger("ray.serve")
T = TypeVar("T")

STORE_RETRY_S = 20.0  # a killed storage replica was replaced in ~8-9 s here


@dataclass(frozen=True)
class Upload:
    """One image as a client sent it, with the options it asked for. ``owner`` is the id of the API key
    that sent it (None when the service has no keys): what it stores belongs to that key."""

    data: bytes
    filename: str | None
    request_id: str
    model: str | None = None
    format: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class Accepted:
    """An upload that passed every check a request can fail: what ``process`` needs to finish it."""

    upload: Upload
    probe: inspection.Probe
    model: ModelSummary
    digest: str

    @property
    def score(self) -> float:
        return inspection.quality_score(self.probe.width, self.probe.height)

    @property
    def original(self) -> EncodedImage:
        p = self.probe
        return EncodedImage(p.data, p.extension, p.content_type, p.width, p.height)


@dataclass(frozen=True)
class Routed:
    """What the policy made of an accepted image: its metrics, the decision, the model to run."""

    metrics: quality.ImageQuality
    decision: Decision
    model: ModelSummary
    decoded: DecodedImage | None  # the pixels, when they were decoded already


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


def variant(upscaled: UpscaledImage) -> str:
    """How an upscaled output was made from its source: part of its content address."""
    return f"{upscaled.model}:x{upscaled.scale}:{upscaled.image.extension}"


def output_format(requested: str, width: int, height: int, scale: int) -> str:
    """The format to encode an upscaled ``width×height`` image in: ``requested`` unless its encoder
    cannot write an image that large (``ImageFormat.max_side``), then PNG. Decided before the upscaler
    runs, rather than failing after the work."""
    limit = formats.by_name(requested).max_side
    return formats.FALLBACK.name if limit is not None and max(width, height) * scale > limit else requested


class Flow:
    def __init__(
        self, upscaler: UpscalerHandle, storage: StorageHandle, settings: Settings, policy: QualityPolicy | None = None
    ) -> None:
        self.upscaler = upscaler
        self.storage = storage
        self.settings = settings
        self.policy = policy or load_policy(settings.quality_policy)
        self._models: list[ModelSummary] | None = None
        # Full decodes hold a whole image's pixels (3 bytes each for RGB, more while decoding): a few at
        # a time per replica keeps memory flat when many large uploads arrive together.
        self._decoder = ThreadPoolExecutor(settings.max_concurrent_decodes, thread_name_prefix="decode")

    async def _full_decode(self, fn: Callable[[inspection.Probe, int], T], probe: inspection.Probe) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._decoder, fn, probe, self.settings.max_image_pixels)

    async def models(self) -> list[ModelSummary]:
        """The upscaler's catalogue (the same on every replica), fetched once; asked again of another
        replica when the one asked died meanwhile (a lookup is safe to repeat)."""
        if self._models is None:
            self._models = await self._fetch_models()
        return self._models

    async def _fetch_models(self) -> list[ModelSummary]:
        async for attempt in upscale_attempts("(model catalogue)", STORE_RETRY_S):
            with attempt:
                models: list[ModelSummary] = await self.upscaler.models.remote()
                return models
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def choose_model(self, name: str | None) -> ModelSummary:
        models = await self.models()
        wanted = name or next(m.name for m in models if m.default)
        for model in models:
            if model.name == wanted:
                return model
        raise UnknownModelError(wanted, [m.name for m in models])

    async def check_options(self, model: str | None, fmt: str | None) -> ModelSummary:
        """The model an upload names (or the default) and its output format, or the error naming them."""
        if fmt is not None and fmt not in formats.output_names():
            raise UnknownOutputFormatError(fmt, formats.output_names())
        return await self.choose_model(model)

    async def accept(self, upload: Upload) -> Accepted:
        """Every check a request can fail, from the header alone (no pixel decoded)."""
        model = await self.check_options(upload.model, upload.format)
        probe = await asyncio.to_thread(inspection.inspect, upload.data, self.settings.max_image_pixels)
        return Accepted(upload, probe, model, hashlib.sha256(upload.data).hexdigest())

    async def process(self, upload: Upload) -> Outcome:
        clock = Stopwatch()
        accepted = await self.accept(upload)
        clock.lap("inspect")
        return await self.finish(accepted, clock)

    async def finish(self, accepted: Accepted, clock: Stopwatch | None = None) -> Outcome:
        """Measure and route an accepted image, and store what it becomes."""
        clock = clock or Stopwatch()
        routed = await self.route(accepted, clock)
        if routed.decision.route == "store":
            outcome = await self._store_as_uploaded(accepted, routed, clock)
        else:
            outcome = await self._upscale(accepted, routed, clock)
        log.info(
            "request %s: %s %dx%d score %.3f %s → %s (%.0f ms)",
            accepted.upload.request_id,
            outcome.original_key,
            outcome.width,
            outcome.height,
            outcome.quality_score,
            routed.decision.rule,
            outcome.stored.key,
            outcome.timings_ms["total"],
        )
        return outcome

    async def route(self, accepted: Accepted, clock: Stopwatch) -> Routed:
        """Decode what the likely route needs, measure the metrics on it and apply the policy. An image the
        upscaler could not take (over MAX_UPSCALE_PIXELS) only gets the cheap full check: its pixels are
        never decoded at full size or shipped."""
        probe = accepted.probe
        decoded: DecodedImage | None = None
        upscalable = probe.width * probe.height <= self.settings.max_upscale_pixels
        if accepted.score >= self.settings.quality_threshold or not upscalable:
            image = await self._full_decode(inspection.verify, probe)
            clock.lap("verify")
            metrics = quality.measure_image(image, probe.width, accepted.score, probe.quantization)
        else:
            decoded = await self._full_decode(inspection.decode, probe)
            clock.lap("decode")
            metrics = quality.measure(decoded.pixels, accepted.score, probe.quantization)
        clock.lap("measure")
        decision = self.policy.decide(metrics.routing_values(), self.settings.quality_threshold)
        return Routed(metrics, decision, await self._policy_model(accepted, decision), decoded)

    async def _policy_model(self, accepted: Accepted, decision: Decision) -> ModelSummary:
        """The request's own model if it named one; else the policy's family at the scale (UPSCALE_SCALE,
        or with auto the smallest that lifts the resolution score to the threshold), or its stand-in there
        when that family is not served (``family_model``); the fidelity model standing in is logged."""
        if accepted.upload.model is not None or decision.model is None:
            return accepted.model
        scale = scale_for(accepted.score, self.settings.quality_threshold, self.settings.scales)
        chosen = family_model(await self.models(), decision.model, scale)
        if unserved(chosen, decision.model):
            log.warning("quality policy asked for the %s model at ×%d, which is not served", decision.model, scale)
        return chosen or accepted.model

    async def _store_as_uploaded(self, accepted: Accepted, routed: Routed, clock: Stopwatch) -> Outcome:
        stored = await self._put(Folder.GOOD_QUALITY, accepted, accepted.original)
        clock.lap("store")
        message = "Image quality is good; stored as uploaded."
        return _outcome(accepted, routed, Folder.GOOD_QUALITY, Status.SUCCESS, message, stored, clock)

    async def _upscale(self, accepted: Accepted, routed: Routed, clock: Stopwatch) -> Outcome:
        probe, limit = accepted.probe, self.settings.max_upscale_pixels
        if probe.width * probe.height > limit:  # decided before its pixels are decoded and shipped
            reason = f"{probe.width}×{probe.height} is over MAX_UPSCALE_PIXELS={limit:,}"
            return await self._keep_original(accepted, routed, clock, reason)
        decoded = routed.decoded
        if decoded is None:  # a policy rule upscales an image that only had its cheap check
            decoded = await self._full_decode(inspection.decode, probe)
            clock.lap("decode")
        requested = accepted.upload.format or self.settings.output_format
        fmt = output_format(requested, probe.width, probe.height, routed.model.scale)
        degradation = quality.degradation(routed.metrics, decoded.pixels, routed.model.conditions)
        try:
            upscaled = await self._upscale_within_deadline(accepted, routed.model, decoded, fmt, degradation)
        except BackPressureError as exc:  # every upscaler queue is full: a retry later will be upscaled
            raise OverloadedError() from exc
        except Exception as exc:  # whatever broke upscaling (or its deadline), the original must still be kept
            return await self._keep_original(accepted, routed, clock, str(exc) or type(exc).__name__)
        clock.lap("upscale")
        stored = await self._put(Folder.UPSCALED, accepted, upscaled.image, variant(upscaled))
        clock.lap("store")
        message = f"Image upscaled ×{upscaled.scale} and stored."
        return _outcome(accepted, routed, Folder.UPSCALED, Status.SUCCESS, message, stored, clock, upscaled)

    async def _upscale_within_deadline(
        self, accepted: Accepted, model: ModelSummary, decoded: DecodedImage, fmt: str, degradation: Degradation
    ) -> UpscaledImage:
        """The upscaler's answer within UPSCALE_TIMEOUT_S. A call whose replica died is sent again every
        second (an upscale is pure: Serve routes it to a live or replacement replica) while the deadline
        allows; past the deadline the request is cancelled and ``UpscaleDeadlineError`` raised. The
        measured ``degradation`` goes with the pixels: a degradation-aware model is conditioned on it."""
        upscaler = self.upscaler.options(multiplexed_model_id=model.name)
        deadline = time.monotonic() + self.settings.upscale_timeout_s
        async for attempt in upscale_attempts(accepted.upload.request_id, self.settings.upscale_timeout_s):
            with attempt:
                return await self._within(
                    upscaler.upscale.remote(decoded, fmt, degradation), deadline - time.monotonic()
                )
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def _within(self, response: Awaitable[UpscaledImage], timeout: float) -> UpscaledImage:
        try:
            return await asyncio.wait_for(response, max(timeout, 0.0))
        except TimeoutError:
            cancel = getattr(response, "cancel", None)
            if callable(cancel):
                cancel()  # the replica stops its work at its next await
            raise UpscaleDeadlineError(self.settings.upscale_timeout_s) from None

    async def _keep_original(self, accepted: Accepted, routed: Routed, clock: Stopwatch, reason: str) -> Outcome:
        log.warning("request %s: upscaling failed, keeping the original: %s", accepted.upload.request_id, reason)
        clock.lap("upscale")
        stored = await self._put(Folder.COULDNT_UPSCALE, accepted, accepted.original)
        clock.lap("store")
        message = "Upscaling failed; the original image was stored in couldn't_upscale/."
        return _outcome(accepted, routed, Folder.COULDNT_UPSCALE, Status.ERROR, message, stored, clock)

    async def _put(
        self, folder: Folder, accepted: Accepted, image: EncodedImage, made_as: str | None = None
    ) -> StoredObject:
        """Store through the storage deployment. Puts are create-only and idempotent, so one that failed
        because its replica died (Serve replaces it in ~10 s) is simply sent again, backing off 0.25 s to
        2 s, for up to ``STORE_RETRY_S``; then 503 with Retry-After, never a 500. The object belongs to the
        upload's owner, and ``created`` is about that owner (``duplicate`` only for its own uploads)."""
        upload = accepted.upload
        try:
            async for attempt in store_attempts(upload.request_id, STORE_RETRY_S):
                with attempt:
                    return await self.storage.put.remote(
                        folder, upload.filename, accepted.digest, image, made_as, upload.owner
                    )
        except REPLICA_FAILURES as exc:
            raise StorageError("The storage service did not answer; nothing was stored, retry later.") from exc
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def spool_status(self, timeout_s: float = 5.0) -> SpoolStatus | None:
        """The storage spool's depth and age (``None`` without a spool or when storage does not answer)."""
        try:
            return await asyncio.wait_for(self.storage.spool_status.remote(), timeout_s)
        except Exception:
            return None

    async def unavailable_reasons(self, timeout_s: float = 5.0) -> list[str]:
        checks = {"upscaler": self.upscaler.unavailable_reason, "storage": self.storage.unavailable_reason}

        async def ask(name: str, method: Ask[str | None]) -> str | None:
            try:
                reason = await asyncio.wait_for(method.remote(), timeout_s)
            except TimeoutError:
                return f"{name}: no replica answered within {timeout_s:g} s"
            except Exception as exc:  # the details (hosts, paths) go to the log, not to the public reason
                log.warning("health: %s did not answer: %s", name, exc)
                return f"{name}: {type(exc).__name__}"
            return f"{name}: {reason}" if reason else None

        results = await asyncio.gather(*(ask(n, m) for n, m in checks.items()))
        return [r for r in results if r]


def _outcome(
    accepted: Accepted,
    routed: Routed,
    folder: Folder,
    status: Status,
    message: str,
    stored: StoredObject,
    clock: Stopwatch,
    upscaled: UpscaledImage | None = None,
) -> Outcome:
    probe, output = accepted.probe, (upscaled.image if upscaled else accepted.original)
    timings = clock.total()
    if upscaled:
        timings.update(model=round(upscaled.upscale_seconds * 1000, 2), encode=round(upscaled.encode_seconds * 1000, 2))
    tried = folder is not Folder.GOOD_QUALITY
    if stored.pending:
        message += " The bucket is unreachable: it waits in a durable spool and reaches the bucket when it answers."
    return Outcome(
        folder=folder,
        status=status,
        message=message,
        original_key=f"{stored.stem}.{probe.extension}",
        stored=stored,
        quality_score=round(accepted.score, 6),
        width=probe.width,
        height=probe.height,
        output_width=output.width,
        output_height=output.height,
        processed_at=datetime.now(UTC),
        upscale_scale=routed.model.scale if tried else None,
        model=routed.model.name if tried else None,
        precision=upscaled.precision if upscaled else None,
        tiles=upscaled.tiles if upscaled else None,
        timings_ms=timings,
        quality_metrics=routed.metrics.to_dict(),
        route=routed.decision.rule,
    )
