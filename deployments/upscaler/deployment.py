"""The upscaler deployment: models chosen per request, tile-level dynamic batching across requests.

Each request names a model through Serve's model multiplexing (``multiplexed_model_id``; empty means
the default). Its image is cut into overlapping tiles (``models.tiling``); every tile is submitted to
the ``@serve.batch`` method on its own, so tiles of all concurrent requests fill the same batches.
The forward pass runs on one dedicated thread, never on the replica's event loop, so every pass reuses
the same thread's OpenMP pool and heap; encoding runs beside it on other threads (a large PNG on as
many threads as the forward pass, in bands: ``png.py``). Batch size, batch
wait, tile size and tile layout are runtime tunables (``user_config`` in serve_config.yaml, applied by
``reconfigure``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from ray import serve

from configs.model_registry import ModelEntry
from configs.settings import Settings
from deployments.contracts.errors import UpscaleError
from deployments.contracts.values import DecodedImage, Degradation, EncodedImage, ModelSummary, UpscaledImage
from deployments.upscaler.budget import PixelBudget, pixel_bytes
from deployments.upscaler.catalog import Catalog
from deployments.upscaler.encode import PNG, encode, exif_for_output, fast_png
from deployments.upscaler.metrics import UpscalerMetrics
from deployments.upscaler.streaming import PngStream, idle_executor
from deployments.upscaler.tiler import RowsDone, TileJob, run_grouped, upscale_pixels
from deployments.upscaler.tunables import DEFAULT_BATCH_PIXELS, DEFAULT_BATCH_WAIT_S, MIN_TILE_SIZE, UpscalerConfig
from models import precision
from models.conditioning import bind
from models.engine import TileEngine, keep_large_allocations, resolve_device, threads_share_one_heap
from models.tiling import DEFAULT_TILE_SIZE

log = logging.getLogger("ray.serve")

# The routed models (with UPSCALE_SCALE=auto: fidelity, real-world and JPEG specialist at ×2 and ×4)
# and one more named by a request: the bundled models' weights are small next to one tile's
# feature maps (their file sizes are in GET /api/models), so keeping them all loaded costs little.
MODELS_PER_REPLICA = 7
HEALTH_PROBE_SIZE = 32
# Under Serve's 30 s health-check timeout, with room for the probe to wait behind the largest CPU batch
# in flight (a batch's time per tile size: ``python -m bench.engine``, docs/benchmarks.md "Engine").
HEALTH_TIMEOUT_S = 20.0


def tile_pixels(jobs: list[TileJob]) -> int:
    """A batch's size for ``@serve.batch``: input pixels, so big and small tiles share one budget."""
    return sum(int(tile.shape[1]) * int(tile.shape[2]) for _, tile in jobs)


# A caller waiting behind 32 queued requests gets BackPressureError at once (the flow answers 503).
@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=16, max_queued_requests=32)
class Upscaler:
    def __init__(self, settings: Settings, registry: list[ModelEntry]) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        # No page faults for every tile's feature maps (the gain: docs/benchmarks.md, "Where the time goes").
        keep_large_allocations()
        if self.device.type == "cpu" and not threads_share_one_heap():
            log.warning(
                "MALLOC_ARENA_MAX is not 1: the forward thread may get a heap that unmaps its feature maps "
                "after every pass (up to 1.5x slower; see serve_config.yaml)"
            )
        # One thread runs every forward pass (one batch at a time): its OpenMP pool and heap stay warm.
        self._forward_thread = ThreadPoolExecutor(1, thread_name_prefix="upscaler-forward")
        # A large PNG is deflated band by band while later tiles are upscaled, on cycles the forward pass
        # leaves idle (streaming.py); None where the system cannot run a thread only when a core idles.
        self._idle_encoder = idle_executor()
        self.catalog = Catalog(settings, registry)
        self.default_engine = self._build_engine(self.catalog.default)
        self.tile_size = DEFAULT_TILE_SIZE
        self.tile_layout = "balanced"
        # The batcher's limits live on the decorated method, which Ray pickles with the class: start every
        # replica from the defaults, whatever the process that deployed it did to them. Ray pins OMP threads
        # to the replica's num_cpus; the forward pass is the only heavy work on the node, so it gets every
        # core unless user_config sets torch_threads.
        self.pixel_budget = PixelBudget()  # bytes of pixels in flight (budget.py); beyond it requests queue
        self.configure(UpscalerConfig())
        self.metrics = UpscalerMetrics()
        log.info("default model %s on %s, %d threads", self.catalog.default, self.device, torch.get_num_threads())

    def _build_engine(self, name: str) -> TileEngine:
        """The model's engine by the precision rule (``models.precision``): int8 (OpenVINO), or PyTorch.
        A degradation-aware model's engine is bound to a clean upload's values, so it runs like any other
        (the health probe); each upload rebinds it to its own (``upscale``)."""
        loaded = self.catalog.load(name)
        measured = self.catalog.precision_loss_db(name)
        path = self.catalog.specs[name].path
        engine = precision.build_engine(loaded, path, self.device, self.settings.precision, measured)
        log.info("model %s runs in %s on %s", name, engine.precision, self.device)
        return bind(engine, Degradation().values())

    def configure(self, config: dict[str, Any] | UpscalerConfig) -> None:
        """Apply the tunables (``UpscalerConfig``: unknown keys and bad values raise, nothing is changed)."""
        tunables = UpscalerConfig.model_validate(config)
        margin = max(info.tile_margin for info in self.catalog.infos.values())
        if tunables.tile_size <= 2 * margin:
            raise ValueError(f"tile_size={tunables.tile_size} must exceed twice the largest model margin {margin}")
        # @serve.batch adds these setters to the method; Ray's annotations do not say so.
        self._forward_tiles.set_max_batch_size(tunables.max_batch_pixels)  # type: ignore[attr-defined]
        self._forward_tiles.set_batch_wait_timeout_s(tunables.batch_wait_timeout_s)  # type: ignore[attr-defined]
        self.tile_size = tunables.tile_size
        self.tile_layout = tunables.tile_layout
        self.pixel_budget.set_limit(tunables.max_pixel_bytes_in_flight)
        threads = tunables.torch_threads or len(os.sched_getaffinity(0))
        self.encode_threads = threads  # a PNG's bands are deflated on as many threads (png.py)
        torch.set_num_threads(threads)
        # OpenMP keeps a thread count per thread: set it on the thread that runs the forward passes.
        self._forward_thread.submit(torch.set_num_threads, threads).result()

    async def reconfigure(self, config: dict[str, Any] | None, rank: object = None) -> None:
        """Serve calls this on every replica at start and on every change of ``user_config``. Because it
        takes ``rank``, Serve calls it at start even when a config sets no user_config (Ray 2.60,
        ``UserCallableWrapper.call_reconfigure``), so the default model is always registered below."""
        self.configure(config or {})
        # Register the routed models (the default and, with the quality policy, its real-world
        # counterpart) with Serve's multiplexing on this replica. Every request names its model, and
        # Serve's router sends a model's requests to replicas that registered it first: a replica that
        # had not loaded a model got none of its requests until the others were full (tests/multinode
        # checks that every replica serves: README, "Observability and scale").
        for name in self.catalog.routed:
            await self._engine(name)

    @serve.multiplexed(max_num_models_per_replica=MODELS_PER_REPLICA)  # type: ignore[untyped-decorator]
    async def _engine(self, name: str) -> TileEngine:
        if name == self.catalog.default:
            return self.default_engine
        return await asyncio.to_thread(self._build_engine, name)

    @serve.batch(
        max_batch_size=DEFAULT_BATCH_PIXELS, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_S, batch_size_fn=tile_pixels
    )
    async def _forward_tiles(self, jobs: list[TileJob]) -> list[torch.Tensor]:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        outputs, passes = await loop.run_in_executor(self._forward_thread, run_grouped, jobs)
        self.metrics.batch(len(jobs), passes, time.perf_counter() - started, tile_pixels(jobs))
        return outputs

    async def upscale(
        self, image: DecodedImage, fmt: str | None = None, degradation: Degradation | None = None
    ) -> UpscaledImage:
        """Upscale ``image`` with the request's model and encode it; ``UpscaleError`` on any failure.
        ``degradation``: what the flow measured on the upload (none: a clean one), the values a
        degradation-aware model runs with (``models.conditioning``); other models ignore it. Tiles of
        such a model share forward passes only with tiles of the same upload (``run_grouped`` groups by
        engine, and each upload has its own binding)."""
        pixels = image.width * image.height
        if pixels > self.settings.max_upscale_pixels:
            raise UpscaleError(
                f"{image.width}×{image.height} is over MAX_UPSCALE_PIXELS={self.settings.max_upscale_pixels:,}"
            )
        started = time.perf_counter()
        try:
            model = await self._engine(self.catalog.resolve(serve.get_multiplexed_model_id()))
            engine = bind(model, (degradation or Degradation()).values())
            async with self.pixel_budget.hold(pixel_bytes(image.height, image.width, image.channels, engine.scale)):
                # The output is freed on return, while the budget still covers it.
                encoded, tiles, upscaled = await self._upscale_and_encode(engine, image, fmt)
        except Exception as exc:
            self.metrics.failure()
            log.exception("upscaling a %dx%d image failed", image.width, image.height)
            raise UpscaleError(f"{type(exc).__name__}: {exc}") from exc
        done = time.perf_counter()
        self.metrics.image(pixels, done - started)
        return UpscaledImage(
            encoded,
            engine.info.name,
            engine.scale,
            engine.precision,
            tiles,
            upscaled - started,
            done - upscaled,
        )

    async def _upscale_and_encode(
        self, engine: TileEngine, image: DecodedImage, fmt: str | None
    ) -> tuple[EncodedImage, int, float]:
        """The output encoded, the tiles it took, and when its last tile was in (``perf_counter``)."""
        fmt = fmt or self.settings.output_format
        stream = self._png_stream(image, fmt)
        try:
            output, tiles = await self._upscale_pixels(engine, image, stream.rows if stream else None)
            upscaled = time.perf_counter()
            return await asyncio.to_thread(self._encode, output, image, fmt, stream), tiles, upscaled
        finally:
            if stream is not None:
                stream.abandon()  # an upscale that failed or was cancelled leaves no band queued

    def _png_stream(self, image: DecodedImage, fmt: str) -> PngStream | None:
        """A stream that deflates the output's bands as they are done, for an output the fast PNG writer
        takes; None for other formats (and without an idle thread)."""
        if self._idle_encoder is None or not fast_png(fmt, self.settings.png_compress_level, image.channels):
            return None
        exif = exif_for_output(image.exif, self.settings.keep_gps)
        level = self.settings.png_compress_level
        return PngStream(self._idle_encoder, level, image.icc_profile, exif, self.encode_threads)

    def _encode(
        self, output: NDArray[np.uint8], image: DecodedImage, fmt: str, stream: PngStream | None
    ) -> EncodedImage:
        """The upscaled ``output`` encoded: what the stream has not deflated yet, or the whole image."""
        if stream is not None:
            data = stream.finish(output)
            return EncodedImage(data, PNG.extension, PNG.media_type, int(output.shape[1]), int(output.shape[0]))
        exif = exif_for_output(image.exif, self.settings.keep_gps)
        return encode(output, fmt, self.settings.png_compress_level, image.icc_profile, exif, self.encode_threads)

    async def _upscale_pixels(
        self, engine: TileEngine, image: DecodedImage, on_rows: RowsDone | None = None
    ) -> tuple[Any, int]:
        """Tile and upscale; out of memory, try again with tiles half the size (down to 64 pixels)."""

        async def forward_tile(tile: torch.Tensor) -> torch.Tensor:
            output: torch.Tensor = await self._forward_tiles((engine, tile))
            return output

        height, width = image.pixels.shape[:2]
        tile_size = engine.info.tile_side(height, width, self.tile_size)  # one tile if the model asks it
        while True:
            try:
                margin, scale, layout = engine.info.tile_margin, engine.scale, self.tile_layout
                return await upscale_pixels(image.pixels, forward_tile, tile_size, margin, scale, layout, on_rows)
            except torch.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                smaller = tile_size // 2
                if smaller < MIN_TILE_SIZE or smaller <= 2 * engine.info.tile_margin:
                    raise
                log.warning("out of memory with %d-pixel tiles; retrying with %d", tile_size, smaller)
                tile_size = smaller

    def models(self) -> list[ModelSummary]:
        return self.catalog.summaries()

    def unavailable_reason(self) -> str | None:
        return None if self.default_engine is not None else "model not loaded"

    async def check_health(self) -> None:
        """The forward thread is alive and answers: a 32×32 pass of the default model on it, waiting at
        most behind the batch in flight. A dead or wedged thread fails the replica, and Serve replaces it."""
        probe = torch.zeros(1, 3, HEALTH_PROBE_SIZE, HEALTH_PROBE_SIZE, dtype=torch.uint8)
        try:
            future = self._forward_thread.submit(self.default_engine.run, probe)
            await asyncio.wait_for(asyncio.wrap_future(future), HEALTH_TIMEOUT_S)
        except TimeoutError:
            raise UpscaleError(f"the forward thread did not answer within {HEALTH_TIMEOUT_S:g} s") from None
        except RuntimeError as exc:  # the executor was shut down, or the pass itself failed
            raise UpscaleError(f"the forward thread cannot run the model: {exc}") from exc
