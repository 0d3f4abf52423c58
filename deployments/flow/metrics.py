"""The quality metrics of every accepted image as Ray metrics (``ray_upscaler_quality_*``), recorded by
both doors that run the flow: the upload route and the jobs consumer."""

from __future__ import annotations

from ray.serve import metrics


class QualityHistograms:
    def __init__(self) -> None:
        self._sharpness = metrics.Histogram(
            "upscaler_quality_sharpness",
            "Sharpness of accepted images (0-1, higher is sharper; deployments/flow/quality.py)",
            boundaries=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        )
        self._jpeg_quality = metrics.Histogram(
            "upscaler_quality_jpeg_quality",
            "Estimated JPEG quality of accepted JPEG images (1-100, from the quantisation tables)",
            boundaries=[10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
        )
        self._noise = metrics.Histogram(
            "upscaler_quality_noise",
            "Estimated noise sigma of accepted images, in 8-bit levels",
            boundaries=[0.5, 1, 2, 3, 5, 8, 12, 20],
        )
        self._routes = metrics.Counter(
            "upscaler_quality_routes_total",
            "Images (uploads and job items) by the quality-policy rule that routed them and the model chosen",
            tag_keys=("rule", "model"),  # type: ignore[arg-type]  # Ray annotates Tuple[str]
        )

    def record(self, values: dict[str, float | int | None] | None, rule: str | None, model: str | None) -> None:
        """An image's no-reference metrics (one histogram each) and the rule that routed it."""
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
