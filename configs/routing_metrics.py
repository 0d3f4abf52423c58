"""The metrics the quality policy can route on: the one table the policy, the measured values and the
Prometheus histograms read.

Each metric is a field of the flow's ``ImageQuality`` with the same name (``deployments/flow/quality.py``
computes it; a test checks that every metric here is one of its fields). The policy's conditions
(``when: {noise: {min: 4}}``) may name exactly these; the ingress and the jobs consumer record one
histogram, ``ray_upscaler_quality_<name>``, for each metric that has ``buckets``. Adding a routing
metric is a row here and a field (with its computation) in ``ImageQuality``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoutingMetric:
    """``name`` is the policy's key and ``ImageQuality``'s field; ``unit`` says what a value means and
    ``help`` is its Prometheus description. ``buckets`` are the histogram's boundaries; None: the metric
    gets no histogram."""

    name: str
    unit: str
    help: str
    buckets: tuple[float, ...] | None = None

    @property
    def histogram(self) -> str:
        """The Prometheus name Ray exports with its ``ray_`` prefix."""
        return f"upscaler_quality_{self.name}"


ROUTING_METRICS: tuple[RoutingMetric, ...] = (
    RoutingMetric("resolution", "pixels / 4K UHD", "The seed's resolution score"),
    RoutingMetric(
        "sharpness",
        "0-1, higher is sharper",
        "Sharpness of accepted images (0-1, higher is sharper; deployments/flow/quality.py)",
        (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    ),
    RoutingMetric(
        "jpeg_quality",
        "1-100, absent unless the file is a JPEG (a condition on it then fails)",
        "Estimated JPEG quality of accepted JPEG images (1-100, from the quantisation tables)",
        (10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
    ),
    RoutingMetric(
        "noise",
        "σ in 8-bit levels per colour channel",
        "Estimated noise sigma of accepted images, in 8-bit levels",
        (0.5, 1, 2, 3, 5, 8, 12, 20),
    ),
)


def metric_names() -> tuple[str, ...]:
    return tuple(m.name for m in ROUTING_METRICS)
