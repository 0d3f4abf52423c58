"""The monitoring summary's counters, without Ray."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deployments.ingress.stats import WINDOW_MINUTES, Stats, percentile


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 100) == 100
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None


def test_folders_histogram_and_success_rate() -> None:
    stats = Stats(Clock())
    stats.record("upscaled", "success", 0.02, 1.0)
    stats.record("upscaled", "success", 0.3, 2.0)
    stats.record("couldn't_upscale", "error", 0.3, 3.0)
    stats.record("good_quality", "success", 1.0, 0.1)
    stats.record("good_quality", "success", 5.0, 0.1)
    s = stats.summary()
    assert s["images_total"] == 5
    assert s["images_per_folder"] == {"good_quality": 2, "upscaled": 2, "couldn't_upscale": 1}
    counts = {(b["from"], b["to"]): b["count"] for b in s["quality_score_histogram"]}
    assert (
        counts[(0.0, 0.05)] == 1 and counts[(0.25, 0.5)] == 2 and counts[(1.0, 1.5)] == 1 and counts[(2.0, None)] == 1
    )
    assert sum(counts.values()) == 5
    assert s["upscale"] == {"attempted": 3, "succeeded": 2, "success_rate": pytest.approx(2 / 3)}
    assert s["processing_ms"] == {"p50": 1000.0, "p95": 3000.0, "samples": 5}


def test_nothing_recorded_is_null_not_zero() -> None:
    s = Stats(Clock()).summary()
    assert s["upscale"]["success_rate"] is None and s["processing_ms"]["p50"] is None and s["timeline"] == []


def test_a_job_item_is_counted_once_however_often_it_is_seen() -> None:
    stats = Stats(Clock(0.0))
    result = {
        "folder": "upscaled",
        "status": "success",
        "quality_score": 0.01,
        "processed_at": "2027-01-15T08:00:30.5Z",
        "timings_ms": {"total": 250.0},
    }
    assert stats.record_result(result, "job-1:0")
    assert not stats.record_result(result, "job-1:0")
    assert stats.record_result(result, "job-1:1")
    s = stats.summary()
    assert s["images_per_folder"]["upscaled"] == 2
    minute = int(datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp())  # placed by processed_at, not "now"
    assert s["timeline"] == [{"t": minute, "count": 2, "p50_ms": 250.0, "p95_ms": 250.0}]


def test_the_timeline_keeps_one_bucket_per_minute_within_the_window() -> None:
    clock = Clock(60.0 * 1000)
    stats = Stats(clock)
    stats.record("upscaled", "success", 0.1, 0.1)
    stats.record("upscaled", "success", 0.1, 0.3)
    clock.t += 60
    stats.record("upscaled", "success", 0.1, 0.5)
    points = stats.timeline()
    assert [(p["t"], p["count"], p["p50_ms"], p["p95_ms"]) for p in points] == [
        (60_000, 2, 100.0, 300.0),
        (60_060, 1, 500.0, 500.0),
    ]
    clock.t += 60 * WINDOW_MINUTES
    stats.record("upscaled", "success", 0.1, 0.2)
    assert [p["t"] for p in stats.timeline()] == [60_060 + 60 * WINDOW_MINUTES]
    stats.record("upscaled", "success", 0.1, 0.2, at=60.0 * 1000)  # too old to plot, still counted
    assert len(stats.timeline()) == 1 and stats.summary()["images_total"] == 5
