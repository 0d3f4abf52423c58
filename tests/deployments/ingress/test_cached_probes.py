"""Cheap under a flood: ``/api/stats`` and ``/api/health`` reuse one recent answer per ingress replica
(``STATS_CACHE_S``, ``HEALTH_CACHE_S``) instead of calling the deployments, the bucket and the spool
for every request; a store that fails still shows once the window has passed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

import deployments.flow.recent as recent
from configs.settings import load_settings
from deployments.flow.flow import Flow
from deployments.ingress.api import create_api
from tests.fakes import FakeJobs, FakeStorage, FakeUpscaler, Method


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(recent, "monotonic", clock)
    return clock


def counting(calls: Counter[str], name: str, answer: Callable[[], Any]) -> Method:
    def call() -> Any:
        calls[name] += 1
        return answer()

    return Method(call)


class Service:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.storage_down = False
        self.storage, self.upscaler, self.jobs = FakeStorage(), FakeUpscaler(), FakeJobs()
        reason = lambda: "the storage bucket did not answer" if self.storage_down else None  # noqa: E731
        self.storage.unavailable_reason = counting(self.calls, "storage health", reason)
        self.storage.spool_status = counting(self.calls, "spool status", lambda: None)
        self.upscaler.unavailable_reason = counting(self.calls, "upscaler health", lambda: None)
        self.jobs.queue_depth = counting(self.calls, "queue depth", lambda: 0)
        settings = load_settings(stats_cache_s=2.0, health_cache_s=2.0)
        flow = Flow(self.upscaler, self.storage, settings)  # type: ignore[arg-type]
        self.client = TestClient(create_api(flow, settings, jobs=self.jobs))  # type: ignore[arg-type]


def test_a_flood_of_stats_requests_costs_one_computation_per_window(clock: Clock) -> None:
    service = Service()
    with service.client as c:
        answers = [c.get("/api/stats").json() for _ in range(50)]
        assert service.calls == {"spool status": 1, "queue depth": 1}
        assert len({a["generated_at"] for a in answers}) == 1
        clock.t += 2.5
        assert c.get("/api/stats").json()["generated_at"] > answers[0]["generated_at"]
    assert service.calls == {"spool status": 2, "queue depth": 2}


def test_a_flood_of_health_checks_costs_one_probe_per_window(clock: Clock) -> None:
    service = Service()
    with service.client as c:
        assert all(c.get("/api/health").status_code == 200 for _ in range(50))
        assert service.calls == {"storage health": 1, "upscaler health": 1, "spool status": 1}


def test_a_failing_store_shows_once_the_window_has_passed(clock: Clock) -> None:
    service = Service()
    with service.client as c:
        assert c.get("/api/health").status_code == 200
        service.storage_down = True
        clock.t += 1.0
        assert c.get("/api/health").status_code == 200  # the recent probe, still within its window
        clock.t += 1.5
        response = c.get("/api/health")
    assert response.status_code == 503
    assert response.json()["reasons"] == ["storage: the storage bucket did not answer"]
