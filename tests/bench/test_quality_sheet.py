"""The before/after sheet shows each upload through the route the service itself would take."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from bench import quality_sheet
from bench.route_quality import measure, upload
from configs.quality_policy import load_policy
from configs.settings import load_settings
from deployments.contracts.values import ModelSummary
from deployments.flow.flow import Flow, Upload
from tests.fakes import FakeStorage, FakeUpscaler, Method

pytest.importorskip("skimage")
from skimage import data

FIDELITY = ModelSummary("vcsr-m-x2", "vcsr", 2, 1, 1, "", True, False, True, {}, "fidelity")
REAL = ModelSummary("vcsr-real-x2", "vcsr", 2, 1, 1, "", False, False, True, {}, "real")
REAL_CONDITIONED = replace(REAL, name="real-c-x2", conditions=("jpeg_quality", "noise"))
FIDELITY_X4 = ModelSummary("vcsr-m-x4", "vcsr", 4, 1, 1, "", False, False, True, {}, "fidelity")


@pytest.fixture(scope="module")
def photo() -> NDArray[np.uint8]:
    return np.asarray(Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.BICUBIC))


def flow_answer(blob: bytes, served: list[ModelSummary]) -> tuple[str | None, str | None, object]:
    """The rule and model the flow itself picks for ``blob`` sent with no model, and what it tells it."""
    upscaler = FakeUpscaler()
    upscaler.models = Method(lambda: served)
    outcome = asyncio.run(Flow(upscaler, FakeStorage(), load_settings()).process(Upload(blob, "p.png", "rid")))
    return outcome.route, outcome.model, upscaler.degradations[0]


@pytest.mark.parametrize(
    ("setting", "rule"),
    [("jpeg50", "jpeg-artefacts"), ("noise10", "noisy"), ("noise5+jpeg75", "jpeg-artefacts"), ("clean", "clean")],
)
@pytest.mark.parametrize("real", [REAL, REAL_CONDITIONED])
def test_each_row_is_routed_as_the_flow_routes_the_same_upload(
    photo: NDArray[np.uint8], setting: str, rule: str, real: ModelSummary
) -> None:
    blob = upload(photo, setting, "astronaut")
    served = [FIDELITY, real, FIDELITY_X4]
    pixels, metrics = measure(blob)
    route = quality_sheet.service_route(metrics, pixels, load_policy(), 0.5, served, 2)
    assert (route.rule, route.model.name, route.degradation) == flow_answer(blob, served)
    assert route.rule == rule and route.model.name == (FIDELITY.name if rule == "clean" else real.name)


def test_without_a_real_world_model_served_the_route_falls_back_to_the_fidelity_model(photo: NDArray[np.uint8]) -> None:
    pixels, metrics = measure(upload(photo, "jpeg50", "astronaut"))
    route = quality_sheet.service_route(metrics, pixels, load_policy(), 0.5, [FIDELITY], 2)
    assert (route.rule, route.model.name) == ("jpeg-artefacts", "vcsr-m-x2")


def test_every_row_has_a_credit_and_the_sheet_shows_jpeg_q50_and_noisy_uploads() -> None:
    assert all(sample.credit and sample.photo.endswith(".jpg") for sample in quality_sheet.SAMPLES)
    settings = {sample.setting for sample in quality_sheet.SAMPLES}
    assert {"jpeg50", "noise10", "noise5+jpeg75"} <= settings


def test_settings_are_described_as_uploaded() -> None:
    assert quality_sheet.describe("jpeg50") == "JPEG q50"
    assert quality_sheet.describe("noise10") == "noise sigma 10, saved as PNG"
    assert quality_sheet.describe("noise5+jpeg75") == "noise sigma 5, then JPEG q75"
    assert quality_sheet.describe("clean") == "clean, saved as PNG"


@pytest.mark.parametrize("centre", [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)])
def test_the_crop_window_keeps_its_context_inside_the_image(centre: tuple[float, float]) -> None:
    top, left = quality_sheet.window((300, 400, 3), centre)
    margin, crop = quality_sheet.MARGIN, quality_sheet.CROP
    assert margin <= top <= 300 - crop - margin and margin <= left <= 400 - crop - margin
