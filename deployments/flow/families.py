"""Which served model a quality policy's family names at a scale.

A policy rule names a family (``fidelity``, ``real``: ``ModelSummary.routed_as``), not a model; the
upscaler's catalogue says which model serves each family at each scale. A pure function, apart from
``Flow``, so that the flow and the benchmarks that show the service's route (``bench.quality_sheet``)
make the one choice.
"""

from __future__ import annotations

from collections.abc import Iterable

from deployments.contracts.values import ModelSummary


def family_model(served: Iterable[ModelSummary], family: str, scale: int) -> ModelSummary | None:
    """The model of ``served`` routed as ``family`` at ×``scale``; when that family is not served at that
    scale, the fidelity model there (a missing specialist costs quality, not the request); ``None`` when
    neither is served. Saying so (the flow logs a warning) is the caller's part."""
    at_scale = {m.routed_as: m for m in served if m.routed_as and m.scale == scale}
    return at_scale.get(family) or at_scale.get("fidelity")
