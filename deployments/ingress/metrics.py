"""Ingress metrics, exported through Ray's Prometheus endpoint as ``ray_upscaler_*``."""

from __future__ import annotations

from ray.serve import metrics

from deployments.contracts import Folder, Status


class IngressMetrics:
    def __init__(self) -> None:
        self._uploads = metrics.Counter(
            "upscaler_uploads_total",
            "Uploads processed, by folder and status",
            tag_keys=("folder", "status"),  # type: ignore[arg-type]  # Ray annotates Tuple[str]
        )
        self._rejected = metrics.Counter("upscaler_rejected_total", "Uploads refused, by reason", tag_keys=("error",))
        self._score = metrics.Histogram(
            "upscaler_quality_score",
            "Quality score of accepted uploads",
            boundaries=[0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0],
        )
        self._seconds = metrics.Histogram(
            "upscaler_request_seconds",
            "End-to-end upload time, by folder",
            boundaries=[0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32],
            tag_keys=("folder",),
        )

        self._sharpness = metrics.Histogram(
            "upscaler_quality_sharpness",
            "Sharpness of accepted uploads (0-1, higher is sharper; deployments/quality.py)",
            boundaries=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        )
        self._jpeg_quality = metrics.Histogram(
            "upscaler_quality_jpeg_quality",
            "Estimated JPEG quality of accepted JPEG uploads (1-100, from the quantisation tables)",
            boundaries=[10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
        )
        self._noise = metrics.Histogram(
            "upscaler_quality_noise",
            "Estimated noise sigma of accepted uploads, in 8-bit levels",
            boundaries=[0.5, 1, 2, 3, 5, 8, 12, 20],
        )
        self._routes = metrics.Counter(
            "upscaler_quality_routes_total",
            "Uploads by the quality-policy rule that routed them and the model chosen",
            tag_keys=("rule", "model"),  # type: ignore[arg-type]  # Ray annotates Tuple[str]
        )

    def quality(self, values: dict[str, float | int | None] | None, rule: str | None, model: str | None) -> None:
        """The upload's no-reference metrics (one histogram each) and the rule that routed it."""
        if values is None:
            return
        for histogram, key in (
            (self._sharpness, "sharpness"),
            (self._jpeg_quality, "jpeg_quality"),
            (self._noise, "noise"),
        ):
            value = values.get(key)
            if value is not None:
                histogram.observe(float(value))
        self._routes.inc(tags={"rule": rule or "none", "model": model or "none"})

    def upload(self, folder: Folder, status: Status, score: float, seconds: float) -> None:
        self._uploads.inc(tags={"folder": folder.value, "status": status.value})
        self._score.observe(score)
        self._seconds.observe(seconds, tags={"folder": folder.value})

    def rejected(self, code: str) -> None:
        self._rejected.inc(tags={"error": code})
