"""/api/stats on two ingress replicas (real Ray Serve, the embedded broker): the figures are the
service's, so every answer agrees whichever replica gives it, and they count every upload."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from ray import serve

import serve_app.app
from bench import images
from deployments.ingress.deployment import Ingress
from tests.integration.conftest import APP, deployed
from tests.integration.helpers import upload

pytestmark = pytest.mark.integration
UPLOADS = 6


@pytest.fixture(scope="module")
def client(
    serve_url: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("stats-replicas")
    monkeypatch_module.setattr(serve_app.app, "Ingress", Ingress.options(num_replicas=2))  # type: ignore[attr-defined]
    settings = {"storage_dir": str(folder / "storage"), "jobs_dir": str(folder / "jobs"), "stats_cache_s": 0}
    with deployed(serve_url, **settings) as c:
        yield c


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_replica_answers_the_same_figures(client: httpx.Client) -> None:
    ingress = serve.status().applications[APP].deployments["Ingress"]
    assert ingress.replica_states.get("RUNNING") == 2  # type: ignore[call-overload]
    for i in range(UPLOADS):
        response = upload(client, images.png(24 + i, 24, seed=i), f"p{i}.png", "image/png")
        assert response.status_code == 200, response.text
    answers = [client.get("/api/stats").json() for _ in range(12)]
    totals = {a["images_total"] for a in answers}
    folders = {tuple(sorted(a["images_per_folder"].items())) for a in answers}
    assert totals == {UPLOADS} and len(folders) == 1
    assert {a["processing_ms"]["samples"] for a in answers} == {UPLOADS}
