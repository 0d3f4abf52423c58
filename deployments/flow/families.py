"""Which served model a quality policy's family names at a scale.

A policy rule names a family (``fidelity``, ``real``, ``jpeg``: ``ModelSummary.routed_as``), not a model;
the upscaler's catalogue says which model serves each family at each scale. A pure function, apart from
``Flow``, so that the flow and the benchmarks that show the service's route (``bench.quality_sheet``,
``bench.route_quality``) make the one choice.
"""

from __future__ import annotations

from collections.abc import Iterable

from deployments.contracts.values import ModelSummary

# Where a family not served at a scale hands its images: the JPEG specialist to the real-world model
# (trained on JPEG too), that to the fidelity model. A missing specialist costs quality, not the request.
FALLBACK = {"jpeg": "real", "real": "fidelity"}


def family_model(served: Iterable[ModelSummary], family: str, scale: int) -> ModelSummary | None:
    """The model of ``served`` routed as ``family`` at ×``scale``; when that family is not served at that
    scale, the one ``FALLBACK`` leads to (the fidelity model last); ``None`` when none is served.
    Saying so (the flow logs a warning) is the caller's part."""
    at_scale = {m.routed_as: m for m in served if m.routed_as and m.scale == scale}
    while family not in at_scale and family in FALLBACK:
        family = FALLBACK[family]
    return at_scale.get(family) or at_scale.get("fidelity")


def unserved(chosen: ModelSummary | None, family: str) -> bool:
    """Whether ``chosen`` (``family_model``'s answer) is not what ``family`` asked for and not its designed
    stand-in either: no model, or the fidelity model serving a degraded-image family (worth a warning)."""
    return chosen is None or (chosen.routed_as == "fidelity" and family != "fidelity")
