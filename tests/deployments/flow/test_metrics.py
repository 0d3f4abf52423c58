"""The quality metrics both doors record: one observation per measured value, the routing rule counted."""

from __future__ import annotations

from typing import Any

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
    for name, recorder in recorders.items():
        setattr(metrics, name, recorder)
    return metrics, recorders


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
