"""The monitoring summary ``GET /api/stats`` answers: its arithmetic, and the counters of one process.

Prometheus has the same figures (``ray_upscaler_*``) for teams that run it; this is for the web UI and
the CLI, which should not need one. Every outcome is recorded once (a job item seen again on a later
poll is recognised by its id): images per folder, the quality-score histogram, the upscale success rate,
and processing times in one-minute buckets, from which p50/p95 over time come.

The service keeps these counters in the broker's Redis (``shared_stats.SharedStats``), so every ingress
replica answers the same figures. ``Stats`` here keeps them in this process's memory: the in-process app
(no broker) uses it, and the Redis version uses its arithmetic (``score_bin``, ``percentile``,
``summary_of``). Memory is bounded: at most ``WINDOW_MINUTES`` buckets of at most ``SAMPLES_PER_BUCKET``
timings, and ``SEEN_IDS`` recent ids.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deployments.contracts.values import Folder, Status

# Quality-score bins: finer where routing decisions happen (the default threshold is 0.5).
SCORE_EDGES = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
WINDOW_MINUTES = 60
SAMPLES_PER_BUCKET = 2000
SEEN_IDS = 20000


def score_bin(score: float) -> int:
    """The histogram bin of a quality score (the last bin is open-ended: ≥ SCORE_EDGES[-1])."""
    return max(0, bisect.bisect_right(SCORE_EDGES, score) - 1)


def result_fields(result: Mapping[str, Any]) -> tuple[str, str, float, float, float]:
    """A finished job item's result object (the upload route's JSON) as folder, status, score, seconds
    and when it finished (Unix seconds)."""
    processed = datetime.fromisoformat(str(result["processed_at"]).replace("Z", "+00:00")).timestamp()
    seconds = float(result.get("timings_ms", {}).get("total", 0.0)) / 1000
    return str(result["folder"]), str(result["status"]), float(result["quality_score"]), seconds, processed


def timeline_point(minute: int, count: int, seconds: list[float]) -> dict[str, Any]:
    """One point of the timeline: the minute's start (Unix seconds), count, p50 and p95 in ms."""
    ordered = sorted(seconds)
    p50, p95 = percentile(ordered, 50), percentile(ordered, 95)
    return {"t": minute * 60, "count": count, "p50_ms": _ms(p50), "p95_ms": _ms(p95)}


def summary_of(
    folders: Mapping[str, int],
    score_counts: list[int],
    upscale: tuple[int, int],
    recent_seconds: list[float],
    timeline: list[dict[str, Any]],
    since: float,
) -> dict[str, Any]:
    """The summary's JSON from the counters, wherever they are kept. ``upscale``: (tried, succeeded)."""
    ordered = sorted(recent_seconds)
    bins = [
        {"from": low, "to": SCORE_EDGES[i + 1] if i + 1 < len(SCORE_EDGES) else None, "count": n}
        for i, (low, n) in enumerate(zip(SCORE_EDGES, score_counts, strict=True))
    ]
    tried, ok = upscale
    return {
        "images_total": sum(folders.values()),
        "images_per_folder": dict(folders),
        "quality_score_histogram": bins,
        "upscale": {"attempted": tried, "succeeded": ok, "success_rate": ok / tried if tried else None},
        "processing_ms": {
            "p50": _ms(percentile(ordered, 50)),
            "p95": _ms(percentile(ordered, 95)),
            "samples": len(ordered),
        },
        "timeline": timeline,
        "since": since,
    }


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]) of an ascending list; ``None`` when it is empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class _Bucket:
    minute: int
    seconds: list[float] = field(default_factory=list)
    count: int = 0


class Stats:
    """What this replica has processed. Not thread-safe: the replica's event loop is its only caller."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self.started_at = clock()
        self.folders = dict.fromkeys((f.value for f in Folder), 0)
        self.score_counts = [0] * len(SCORE_EDGES)  # the last bin is open-ended: ≥ SCORE_EDGES[-1]
        self.upscale_tried = 0
        self.upscale_ok = 0
        self.all_seconds: deque[float] = deque(maxlen=SAMPLES_PER_BUCKET)
        self._buckets: dict[int, _Bucket] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()

    def record(
        self,
        folder: str,
        status: str,
        score: float,
        seconds: float,
        item_id: str | None = None,
        at: float | None = None,
    ) -> bool:
        """Count one processed image, finished ``at`` (Unix seconds; now by default). An ``item_id``
        already counted is ignored (returns False)."""
        if item_id is not None:
            if item_id in self._seen:
                return False
            self._seen[item_id] = None
            if len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
        self.folders[folder] = self.folders.get(folder, 0) + 1
        self.score_counts[score_bin(score)] += 1
        if folder != Folder.GOOD_QUALITY:
            self.upscale_tried += 1
            self.upscale_ok += status == Status.SUCCESS and folder == Folder.UPSCALED
        self.all_seconds.append(seconds)
        bucket = self._bucket(int((self._clock() if at is None else at) // 60))
        if bucket is not None:
            bucket.count += 1
            if len(bucket.seconds) < SAMPLES_PER_BUCKET:
                bucket.seconds.append(seconds)
        return True

    def record_result(self, result: Mapping[str, Any], item_id: str) -> bool:
        """Count a finished job item from its result object (the upload route's JSON)."""
        folder, status, score, seconds, processed = result_fields(result)
        return self.record(folder, status, score, seconds, item_id, processed)

    def _bucket(self, minute: int) -> _Bucket | None:
        """The minute's bucket; None for a minute older than the window (counted, not plotted)."""
        newest = max(self._buckets, default=minute)
        if minute <= newest - WINDOW_MINUTES:
            return None
        if minute not in self._buckets:
            self._buckets[minute] = _Bucket(minute)
            for old in [m for m in self._buckets if m <= max(newest, minute) - WINDOW_MINUTES]:
                del self._buckets[old]
        return self._buckets[minute]

    def timeline(self) -> list[dict[str, Any]]:
        """One point per minute that saw work: its start (Unix seconds), count, p50 and p95 in ms."""
        buckets = sorted(self._buckets.values(), key=lambda b: b.minute)
        return [timeline_point(b.minute, b.count, b.seconds) for b in buckets]

    def summary(self) -> dict[str, Any]:
        upscale = (self.upscale_tried, self.upscale_ok)
        return summary_of(
            self.folders, self.score_counts, upscale, list(self.all_seconds), self.timeline(), self.started_at
        )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
