"""Ingress metrics, exported through Ray's Prometheus endpoint as ``ray_upscaler_*``."""

from __future__ import annotations

from ray.serve import metrics

from deployments.contracts.values import Folder, Status
from deployments.flow.metrics import QualityHistograms


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
        self._quality = QualityHistograms()  # the same histograms as the jobs consumer's

    def quality(self, values: dict[str, float | int | None] | None, rule: str | None, model: str | None) -> None:
        self._quality.record(values, rule, model)

    def upload(self, folder: Folder, status: Status, score: float, seconds: float) -> None:
        self._uploads.inc(tags={"folder": folder.value, "status": status.value})
        self._score.observe(score)
        self._seconds.observe(seconds, tags={"folder": folder.value})

    def rejected(self, code: str) -> None:
        self._rejected.inc(tags={"error": code})
