"""Jobs metrics, exported through Ray's Prometheus endpoint as ``ray_upscaler_jobs_*``."""

from __future__ import annotations

from datetime import UTC, datetime

from ray.serve import metrics

from deployments.flow.metrics import QualityHistograms


class JobsMetrics:
    def __init__(self) -> None:
        self._submitted = metrics.Counter("upscaler_jobs_items_submitted_total", "Job items accepted")
        self._items = metrics.Counter(
            "upscaler_jobs_items_total", "Job items processed, by status", tag_keys=("status",)
        )
        self._jobs = metrics.Counter("upscaler_jobs_total", "Jobs ended, by final status", tag_keys=("status",))
        self._duration = metrics.Histogram(
            "upscaler_job_seconds",
            "Time from a job's submission to its end",
            boundaries=[1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
        )
        self._queue = metrics.Gauge("upscaler_jobs_queue_depth", "Job items waiting in the broker's queue")
        self._webhooks_pending = metrics.Gauge("upscaler_webhooks_pending", "Webhook deliveries scheduled")
        self._attempts = metrics.Counter(
            "upscaler_webhook_attempts_total", "Webhook delivery attempts, by outcome", tag_keys=("outcome",)
        )
        self._quality = QualityHistograms()  # the same histograms as the upload route's

    def submitted(self, items: int) -> None:
        self._submitted.inc(items)

    def item(self, status: str) -> None:
        self._items.inc(tags={"status": status})

    def job_ended(self, status: str, created_at: str) -> None:
        self._jobs.inc(tags={"status": status})
        started = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        self._duration.observe((datetime.now(UTC) - started).total_seconds())

    def queue(self, depth: int, webhooks_pending: int) -> None:
        self._queue.set(depth)
        self._webhooks_pending.set(webhooks_pending)

    def quality(self, values: dict[str, float | int | None] | None, rule: str | None, model: str | None) -> None:
        self._quality.record(values, rule, model)

    def webhook_attempt(self, outcome: str) -> None:
        self._attempts.inc(tags={"outcome": outcome})
