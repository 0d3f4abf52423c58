"""The quality metrics of every accepted image as Ray metrics (``ray_upscaler_quality_*``), recorded by
both doors that run the flow: the upload route and the jobs consumer. One histogram per routing metric
with buckets (``configs/routing_metrics.py``)."""

from __future__ import annotations

from ray.serve import metrics

from configs import routing_metrics


class QualityHistograms:
    def __init__(self) -> None:
        self._histograms = {
            m.name: metrics.Histogram(m.histogram, m.help, boundaries=list(m.buckets))
            for m in routing_metrics.ROUTING_METRICS
            if m.buckets is not None
        }
        self._routes = metrics.Counter(
            "upscaler_quality_routes_total",
            "Images (uploads and job items) by the quality-policy rule that routed them and the model chosen",
            tag_keys=("rule", "model"),  # type: ignore[arg-type]  # Ray annotates Tuple[str]
        )

    def record(self, values: dict[str, float | int | None] | None, rule: str | None, model: str | None) -> None:
        """An image's no-reference metrics (one histogram each) and the rule that routed it."""
        if values is None:
            return
        for name, histogram in self._histograms.items():
            value = values.get(name)
            if value is not None:
                histogram.observe(float(value))
        self._routes.inc(tags={"rule": rule or "none", "model": model or "none"})
