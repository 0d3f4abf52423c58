"""Upscaler metrics, exported through Ray's Prometheus endpoint as ``ray_upscaler_*``."""

from __future__ import annotations

from ray.serve import metrics


class UpscalerMetrics:
    def __init__(self) -> None:
        self._tiles_per_batch = metrics.Histogram(
            "upscaler_tiles_per_batch", "Tiles in one dynamic batch", boundaries=[1, 2, 4, 8, 16, 32, 64]
        )
        self._batch_seconds = metrics.Histogram(
            "upscaler_batch_seconds",
            "Forward-pass time of one batch",
            boundaries=[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8],
        )
        self._tiles = metrics.Counter("upscaler_tiles_total", "Tiles run through the model")
        # Counters are exact in Ray's Prometheus export (histogram sums are not): tiles per forward
        # pass is upscaler_tiles_total / upscaler_batches_total.
        self._batches = metrics.Counter("upscaler_batches_total", "Dynamic batches formed by @serve.batch")
        self._passes = metrics.Counter(
            "upscaler_forward_passes_total", "Forward passes (one per model and tile shape in a batch)"
        )
        # Saturation of the model itself: forward seconds per second is the share of wall time the
        # forward thread is busy; tile megapixels over forward seconds is the rate it runs at.
        self._forward_seconds = metrics.Counter("upscaler_forward_seconds_total", "Time spent in forward passes")
        self._tile_megapixels = metrics.Counter(
            "upscaler_tile_megapixels_total", "Input megapixels of the tiles run, overlaps included"
        )
        self._seconds = metrics.Histogram(
            "upscaler_image_seconds",
            "Upscale and encode time per image",
            boundaries=[0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32],
        )
        self._megapixels = metrics.Counter("upscaler_input_megapixels_total", "Input megapixels upscaled")
        self._failures = metrics.Counter("upscaler_failures_total", "Images that failed to upscale")

    def batch(self, tiles: int, passes: int, seconds: float, pixels: int) -> None:
        self._tiles_per_batch.observe(tiles)
        self._batch_seconds.observe(seconds)
        self._tiles.inc(tiles)
        self._batches.inc()
        self._passes.inc(passes)
        self._forward_seconds.inc(seconds)
        self._tile_megapixels.inc(pixels / 1e6)

    def image(self, pixels: int, seconds: float) -> None:
        self._megapixels.inc(pixels / 1e6)
        self._seconds.observe(seconds)

    def failure(self) -> None:
        self._failures.inc()
