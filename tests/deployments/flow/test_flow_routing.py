"""The flow measures every upload and lets the quality policy route it (fake handles, no Ray)."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from configs.settings import load_settings
from deployments.contracts.values import Degradation, EncodedImage, ModelSummary, Outcome, UpscaledImage
from deployments.flow.flow import Flow, Upload
from tests.fakes import FakeStorage, Method

pytest.importorskip("skimage")
from skimage import data

FIDELITY = ModelSummary("vcsr-m-x2", "vcsr", 2, 1, 1, "", True, False, True, {}, "fidelity")
REAL = ModelSummary("vcsr-real-x2", "vcsr", 2, 1, 1, "", False, False, True, {}, "real")
FIDELITY_X4 = ModelSummary("vcsr-m-x4", "vcsr", 4, 1, 1, "", False, False, True, {}, "fidelity")
REAL_X4 = ModelSummary("vcsr-real-x4", "vcsr", 4, 1, 1, "", False, False, True, {}, "real")
JPEG = ModelSummary("vcsr-jpeg-x2", "vcsr", 2, 1, 1, "", False, False, True, {}, "jpeg", ("jpeg_quality", "noise"))


class RoutingUpscaler:
    """Serves two models and answers with the one the flow asked for."""

    def __init__(self, catalogue: list[ModelSummary]) -> None:
        self.models = Method(lambda: catalogue)
        self.unavailable_reason = Method(lambda: None)
        self.chosen = "none"
        self.upscale = Method(self._upscale)

    def options(self, *, multiplexed_model_id: str) -> RoutingUpscaler:
        self.chosen = multiplexed_model_id
        return self

    def _upscale(self, image: Any, fmt: str | None, degradation: Degradation | None = None) -> UpscaledImage:
        encoded = EncodedImage(b"png", "png", "image/png", image.width * 2, image.height * 2)
        return UpscaledImage(encoded, self.chosen, 2, "float32", 1, 0.01, 0.01)


def encode(pixels: NDArray[np.uint8], fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def versions() -> dict[str, bytes]:
    """Five versions of one photo, small enough to be upscaled (score < 0.5)."""
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((320, 320), Image.Resampling.LANCZOS))
    rng = np.random.default_rng(0)
    noisy = np.clip(np.round(photo + rng.normal(0, 8, photo.shape)), 0, 255).astype(np.uint8)
    soft = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(1.6)))
    return {
        "clean": encode(photo, "PNG"),
        "jpeg30": encode(photo, "JPEG", quality=30),
        "jpeg90": encode(photo, "JPEG", quality=90),
        "blurred": encode(soft, "PNG"),
        "noisy": encode(noisy, "PNG"),
    }


def run(data_: bytes, model: str | None = None, catalogue: list[ModelSummary] | None = None, **env: Any) -> Outcome:
    flow = Flow(RoutingUpscaler(catalogue or [FIDELITY, REAL, JPEG]), FakeStorage(), load_settings(**env))
    return asyncio.run(flow.process(Upload(data_, "p.png", "rid", model)))


@pytest.fixture(scope="module")
def outcomes(versions: dict[str, bytes]) -> dict[str, Outcome]:
    return {name: run(blob) for name, blob in versions.items()}


def test_metrics_rank_and_size_the_five_versions(outcomes: dict[str, Outcome]) -> None:
    m = {name: o.quality_metrics for name, o in outcomes.items()}
    assert all(v is not None for v in m.values())
    assert (m["jpeg30"]["jpeg_quality"], m["jpeg90"]["jpeg_quality"], m["clean"]["jpeg_quality"]) == (30, 90, None)
    assert m["noisy"]["noise"] > 5 > 2 > m["clean"]["noise"]  # type: ignore[operator]
    assert m["blurred"]["sharpness"] < m["jpeg30"]["sharpness"] < m["clean"]["sharpness"]  # type: ignore[operator]
    assert all(v["resolution"] == pytest.approx(320 * 320 / (3840 * 2160), abs=1e-6) for v in m.values())


def test_degraded_versions_go_to_the_jpeg_specialist_or_the_real_world_model_and_the_clean_one_to_the_fidelity_model(
    outcomes: dict[str, Outcome],
) -> None:
    routes = {name: (o.route, o.model) for name, o in outcomes.items()}
    assert routes == {
        "clean": ("clean", "vcsr-m-x2"),
        "jpeg30": ("jpeg-artefacts", "vcsr-jpeg-x2"),
        "jpeg90": ("clean", "vcsr-m-x2"),
        "blurred": ("blurred", "vcsr-real-x2"),
        "noisy": ("noisy", "vcsr-real-x2"),
    }


def test_an_explicit_model_always_wins(versions: dict[str, bytes]) -> None:
    assert run(versions["jpeg30"], model="vcsr-m-x2").model == "vcsr-m-x2"
    assert run(versions["clean"], model="vcsr-real-x2").model == "vcsr-real-x2"


def test_without_a_real_world_model_served_the_default_model_runs_and_the_flow_says_so(
    versions: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ray.serve"):
        outcome = run(versions["jpeg30"], catalogue=[FIDELITY])
    assert (outcome.route, outcome.model) == ("jpeg-artefacts", "vcsr-m-x2")
    assert "quality policy asked for the jpeg model at ×2, which is not served" in caplog.text


def test_without_the_jpeg_specialist_the_real_world_model_takes_its_uploads_and_nothing_is_logged(
    versions: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    catalogue = [FIDELITY, REAL, JPEG, FIDELITY_X4, REAL_X4]
    with caplog.at_level(logging.WARNING, logger="ray.serve"):
        at_x4 = run(versions["jpeg30"], catalogue=catalogue, upscale_scale="auto", quality_threshold=0.1)
        at_x2 = run(versions["jpeg30"], catalogue=[FIDELITY, REAL])
    assert (at_x4.route, at_x4.model, at_x4.upscale_scale) == ("jpeg-artefacts", "vcsr-real-x4", 4)
    assert (at_x2.route, at_x2.model) == ("jpeg-artefacts", "vcsr-real-x2")
    assert "not served" not in caplog.text


def test_a_large_image_is_stored_and_still_measured(versions: dict[str, bytes]) -> None:
    outcome = run(versions["jpeg30"], quality_threshold=0.001)
    assert (outcome.folder.value, outcome.route, outcome.model) == ("good_quality", "good-resolution", None)
    assert outcome.quality_metrics is not None and outcome.quality_metrics["jpeg_quality"] == 30
    assert outcome.quality_metrics["measured_at_scale"] == 0.125  # the JPEG's 1/8 draft
    assert "measure" in outcome.timings_ms


@pytest.mark.parametrize(
    ("threshold", "scale"),
    [(0.04, 2), (0.1, 4), (0.5, 4)],  # 320² is 0.0123 of 4K: ×2 gives 0.049, ×4 gives 0.198
)
def test_auto_scale_picks_the_smallest_scale_that_reaches_the_threshold(
    versions: dict[str, bytes], threshold: float, scale: int
) -> None:
    catalogue = [FIDELITY, REAL, FIDELITY_X4, REAL_X4]
    clean = run(versions["clean"], catalogue=catalogue, upscale_scale="auto", quality_threshold=threshold)
    noisy = run(versions["noisy"], catalogue=catalogue, upscale_scale="auto", quality_threshold=threshold)
    assert (clean.model, clean.upscale_scale) == (f"vcsr-m-x{scale}", scale)
    assert (noisy.route, noisy.model) == ("noisy", f"vcsr-real-x{scale}")


def test_auto_scale_never_overrides_an_explicit_model(versions: dict[str, bytes]) -> None:
    catalogue = [FIDELITY, REAL, FIDELITY_X4, REAL_X4]
    outcome = run(versions["noisy"], "vcsr-m-x2", catalogue, upscale_scale="auto", quality_threshold=0.5)
    assert outcome.model == "vcsr-m-x2"
