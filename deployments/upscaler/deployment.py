"""The upscaler deployment: one model per replica, tile-level dynamic batching across requests.

Each request's image is cut into fixed-size tiles (``models.tiling``); every tile is submitted to the
``@serve.batch`` method on its own, so tiles of all concurrent requests fill the same batches. The
forward pass runs in a worker thread, never on the replica's event loop. Batch size, batch wait and
tile size are runtime tunables (``user_config`` in serve_config.yaml, applied by ``reconfigure``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import torch
from ray import serve

from configs.settings import Settings
from deployments.contracts import DecodedImage, UpscaledImage, UpscaleError
from deployments.upscaler.encode import encode
from deployments.upscaler.metrics import UpscalerMetrics
from deployments.upscaler.tiler import run_grouped, upscale_pixels
from models.engine import Engine, resolve_device
from models.loader import load_model
from models.registry import default_model_name, resolve

log = logging.getLogger("ray.serve")

DEFAULT_TILE_SIZE = 256


def load_engine(settings: Settings) -> Engine:
    """The engine for the configured model; raises (failing the replica) with the file named."""
    if settings.model_path is not None:
        path, name = settings.model_path, settings.model_path.stem
    else:
        name = settings.model_name or default_model_name(settings.upscale_scale)
        path = resolve(name).path
    loaded = load_model(path, name)
    if loaded.info.scale != settings.upscale_scale:
        raise ValueError(
            f"model {name!r} ({path}) upscales ×{loaded.info.scale} but UPSCALE_SCALE={settings.upscale_scale}; "
            f"choose a ×{settings.upscale_scale} model or set UPSCALE_SCALE={loaded.info.scale}"
        )
    return Engine(loaded.module, loaded.info, resolve_device(settings.device))


@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=16)
class Upscaler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = load_engine(settings)
        self.tile_size = DEFAULT_TILE_SIZE
        # Ray pins OMP threads to the replica's num_cpus (1 here); the forward pass is the only heavy
        # work on the node, so it gets every core unless user_config sets torch_threads.
        torch.set_num_threads(len(os.sched_getaffinity(0)))
        self.metrics = UpscalerMetrics()
        log.info(
            "loaded %s (%s, ×%d, %d parameters) on %s, %d threads",
            self.engine.info.name,
            self.engine.info.architecture,
            self.engine.scale,
            self.engine.info.parameters,
            self.engine.device,
            torch.get_num_threads(),
        )

    def reconfigure(self, config: dict[str, Any]) -> None:
        if "max_batch_size" in config:
            # @serve.batch adds these setters to the method; Ray's annotations do not say so.
            self._forward_tiles.set_max_batch_size(  # type: ignore[attr-defined]
                int(config["max_batch_size"])
            )
        if "batch_wait_timeout_s" in config:
            self._forward_tiles.set_batch_wait_timeout_s(  # type: ignore[attr-defined]
                float(config["batch_wait_timeout_s"])
            )
        if "tile_size" in config:
            size = int(config["tile_size"])
            if size <= 2 * self.engine.info.tile_margin:
                raise ValueError(
                    f"tile_size={size} must exceed twice the model's margin {self.engine.info.tile_margin}"
                )
            self.tile_size = size
        if "torch_threads" in config:
            torch.set_num_threads(int(config["torch_threads"]))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _forward_tiles(self, tiles: list[torch.Tensor]) -> list[torch.Tensor]:
        started = time.perf_counter()
        outputs = await asyncio.to_thread(run_grouped, self.engine, tiles)
        self.metrics.batch(len(tiles), time.perf_counter() - started)
        return outputs

    async def upscale(self, image: DecodedImage) -> UpscaledImage:
        """Upscale ``image`` by the model's scale and encode it; ``UpscaleError`` on any failure."""
        pixels = image.width * image.height
        if pixels > self.settings.max_upscale_pixels:
            raise UpscaleError(
                f"{image.width}×{image.height} is over MAX_UPSCALE_PIXELS={self.settings.max_upscale_pixels:,}"
            )
        started = time.perf_counter()
        try:
            output, tiles = await upscale_pixels(
                image.pixels, self._forward_tiles, self.tile_size, self.engine.info.tile_margin, self.engine.scale
            )
            upscaled = time.perf_counter()
            encoded = await asyncio.to_thread(
                encode,
                output,
                self.settings.output_format,
                self.settings.png_compress_level,
                image.icc_profile,
                image.exif,
            )
        except Exception as exc:
            self.metrics.failure()
            log.exception("upscaling a %dx%d image failed", image.width, image.height)
            if isinstance(exc, torch.OutOfMemoryError) and self.engine.device.type == "cuda":
                torch.cuda.empty_cache()
            raise UpscaleError(f"{type(exc).__name__}: {exc}") from exc
        done = time.perf_counter()
        self.metrics.image(pixels, done - started)
        return UpscaledImage(
            encoded, self.engine.info.name, self.engine.scale, tiles, upscaled - started, done - upscaled
        )

    def unavailable_reason(self) -> str | None:
        return None if self.engine is not None else "model not loaded"

    def check_health(self) -> None:
        if self.engine is None:
            raise UpscaleError("model not loaded")
