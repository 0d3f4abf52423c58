"""The quality metrics both doors record: one observation per measured value, the routing rule counted."""

from __future__ import annotations

from typing import Any

import pytest

import deployments.flow.metrics as flow_metrics
from configs import routing_metrics
from configs.routing_metrics import RoutingMetric
from deployments.flow.metrics import QualityHistograms


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        self.calls.append((value,))

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        self.calls.append((tags,))


def recorded() -> tuple[QualityHistograms, dict[str, Recorder]]:
    metrics = QualityHistograms()
    recorders = {name: Recorder() for name in ("_sharpness", "_jpeg_quality", "_noise", "_routes")}
    metrics._histograms = {name.removeprefix("_"): r for name, r in recorders.items() if name != "_routes"}  # type: ignore[assignment]
    metrics._routes = recorders["_routes"]  # type: ignore[assignment]
    return metrics, recorders


class FakeRayMetrics:
    """Stands for ``ray.serve.metrics``: the histograms made, by name, with their boundaries."""

    def __init__(self) -> None:
        self.histograms: dict[str, list[float]] = {}

    def Histogram(self, name: str, description: str, boundaries: list[float]) -> Recorder:
        self.histograms[name] = boundaries
        return Recorder()

    def Counter(self, name: str, description: str, tag_keys: tuple[str, ...]) -> Recorder:
        return Recorder()


def test_each_routing_metric_with_buckets_has_its_histogram(monkeypatch: pytest.MonkeyPatch) -> None:
    ray_metrics = FakeRayMetrics()
    monkeypatch.setattr(flow_metrics, "metrics", ray_metrics)
    extra = RoutingMetric("measured_at_scale", "1 or 0.125", "Scale the metrics were measured at", (0.2, 0.5))
    monkeypatch.setattr(routing_metrics, "ROUTING_METRICS", (*routing_metrics.ROUTING_METRICS, extra))
    QualityHistograms().record({"measured_at_scale": 0.125}, "rest", "m")
    assert ray_metrics.histograms == {
        "upscaler_quality_sharpness": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        "upscaler_quality_jpeg_quality": [10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
        "upscaler_quality_noise": [0.5, 1, 2, 3, 5, 8, 12, 20],
        "upscaler_quality_measured_at_scale": [0.2, 0.5],
    }


def test_each_measured_value_is_observed_and_the_rule_counted() -> None:
    metrics, r = recorded()
    metrics.record({"sharpness": 0.62, "jpeg_quality": None, "noise": 3, "resolution": 0.1}, "noisy", "vcsr-real-x2")
    assert r["_sharpness"].calls == [(0.62,)] and r["_noise"].calls == [(3.0,)]
    assert r["_jpeg_quality"].calls == []  # not a JPEG
    assert r["_routes"].calls == [({"rule": "noisy", "model": "vcsr-real-x2"},)]


def test_an_image_without_metrics_records_nothing() -> None:
    metrics, r = recorded()
    metrics.record(None, None, None)
    assert all(not recorder.calls for recorder in r.values())


def test_a_stored_image_counts_under_no_model() -> None:
    metrics, r = recorded()
    metrics.record({"sharpness": 0.7}, "good_resolution", None)
    assert r["_routes"].calls == [({"rule": "good_resolution", "model": "none"},)]
