"""Storage metrics, exported through Ray's Prometheus endpoint as ``ray_upscaler_spool_*``."""

from __future__ import annotations

from ray.serve import metrics

from deployments.contracts.values import SpoolStatus


class StorageMetrics:
    def __init__(self) -> None:
        self._objects = metrics.Gauge("upscaler_spool_objects", "Objects waiting in the spool for the bucket")
        self._bytes = metrics.Gauge("upscaler_spool_bytes", "Bytes waiting in the spool for the bucket")
        self._oldest = metrics.Gauge("upscaler_spool_oldest_age_seconds", "Age of the oldest spooled object")
        self._spooled = metrics.Counter("upscaler_spooled_total", "Objects written to the spool")
        self._drained = metrics.Counter("upscaler_spool_drained_total", "Spooled objects delivered to the bucket")
        self._dead = metrics.Counter(
            "upscaler_spool_dead_lettered_total", "Spooled objects the bucket refused for good, moved to dead/"
        )

    def spooled(self) -> None:
        self._spooled.inc()

    def drained(self, count: int) -> None:
        if count:
            self._drained.inc(count)

    def dead_lettered(self, count: int) -> None:
        if count:
            self._dead.inc(count)

    def status(self, status: SpoolStatus) -> None:
        self._objects.set(status.objects)
        self._bytes.set(status.bytes)
        self._oldest.set(status.oldest_age_s or 0.0)
