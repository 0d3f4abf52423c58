"""A policy family names the served model of that family at the scale, else its stand-in there: the JPEG
specialist's is the real-world model, the real-world model's the fidelity model."""

from __future__ import annotations

from deployments.contracts.values import ModelSummary
from deployments.flow.families import family_model, unserved

FIDELITY = ModelSummary("vcsr-m-x2", "vcsr", 2, 1, 1, "", True, False, True, {}, "fidelity")
REAL = ModelSummary("vcsr-real-x2", "vcsr", 2, 1, 1, "", False, False, True, {}, "real")
FIDELITY_X4 = ModelSummary("vcsr-m-x4", "vcsr", 4, 1, 1, "", False, False, True, {}, "fidelity")
REAL_X4 = ModelSummary("vcsr-real-x4", "vcsr", 4, 1, 1, "", False, False, True, {}, "real")
JPEG = ModelSummary("vcsr-jpeg-x2", "vcsr", 2, 1, 1, "", False, False, True, {}, "jpeg", ("jpeg_quality", "noise"))
UNROUTED = ModelSummary("community-x2", "esrgan", 2, 1, 1, "", False, False, True, {})
SERVED = [UNROUTED, FIDELITY, REAL, JPEG, FIDELITY_X4, REAL_X4]


def test_the_family_is_served_by_its_model_at_the_scale() -> None:
    assert family_model(SERVED, "real", 2) == REAL
    assert family_model(SERVED, "real", 4) == REAL_X4
    assert family_model(SERVED, "fidelity", 4) == FIDELITY_X4
    assert family_model(SERVED, "jpeg", 2) == JPEG


def test_a_family_not_served_at_the_scale_falls_back_to_the_fidelity_model_there() -> None:
    assert family_model([FIDELITY, FIDELITY_X4, REAL_X4], "real", 2) == FIDELITY


def test_none_when_neither_the_family_nor_the_fidelity_model_is_served_at_the_scale() -> None:
    assert family_model([UNROUTED, REAL_X4, FIDELITY_X4], "real", 2) is None
    assert family_model([], "fidelity", 2) is None


def test_the_jpeg_specialist_not_served_at_the_scale_hands_over_to_the_real_world_model_without_a_warning() -> None:
    assert family_model(SERVED, "jpeg", 4) == REAL_X4
    assert family_model([FIDELITY, JPEG, FIDELITY_X4], "jpeg", 4) == FIDELITY_X4
    assert not unserved(REAL_X4, "jpeg")
    assert unserved(FIDELITY_X4, "jpeg") and unserved(FIDELITY, "real") and unserved(None, "fidelity")
    assert not unserved(FIDELITY, "fidelity")
