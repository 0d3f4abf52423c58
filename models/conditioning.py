"""Running a degradation-aware network on one image: its engine bound to that image's measured values.

A conditioned VCSR (``VCSRConfig.conditions``) takes, besides the pixels, one value per condition for
the whole image (``models.arch.condition_vector``: the JPEG quality and noise σ the service measures
on the upload). The inference contract (``TileEngine.run``: uint8 tiles in, uint8 tiles out) has no
room for them, and should not: tiling, batching and padding stay the same for every model. So the
values are bound to the network instead (``models.arch.Conditioned``), one binding per image, and the
bound engine honours the contract unchanged.

``bind`` makes that engine from the model's engine: a shallow copy sharing the converted weights, its
module the same network wrapped with the image's values (no weight is copied or converted again, so a
binding costs microseconds and is safe while the model's other bindings run on another thread). A
plain model's engine is returned as it is. The service binds its engines to "no degradation" when it
builds them, so an engine that is never rebound (the health probe, a caller that measured nothing) runs
the network as on a clean upload.

The int8 engine takes them too: its artefact has the values as a second input (``models.quantize``),
and a binding (``models.int8.Int8Engine.bound_to``) shares the compiled models and feeds the values.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from models.arch import VCSR, Conditioned, condition_values, condition_vector
from models.engine import Engine, TileEngine
from models.int8 import Int8Engine


class UnboundableEngineError(TypeError):
    """A conditioned model in an engine that cannot take its condition values."""

    def __init__(self, engine: TileEngine) -> None:
        super().__init__(
            f"model {engine.info.name!r} is conditioned on {', '.join(engine.info.conditions)} but runs in "
            f"{type(engine).__name__} ({engine.precision}), which cannot take them; run it in PyTorch "
            "or int8 (PRECISION=auto picks one)"
        )
        self.engine = engine


def network(engine: Engine) -> VCSR:
    """The conditioned VCSR inside ``engine``, bound or not."""
    module = engine.module.model if isinstance(engine.module, Conditioned) else engine.module
    if not isinstance(module, VCSR):
        raise UnboundableEngineError(engine)
    return module


def bind(engine: TileEngine, measured: Mapping[str, float | None]) -> TileEngine:
    """``engine`` for one image whose measured values are ``measured`` (keys of ``models.arch.CONDITIONS``;
    a missing key or ``None`` is that condition's "none": no JPEG, no noise). A plain model's engine
    comes back as it is; a conditioned one's as a new engine over the same weights, in the same
    precision on the same device. ``UnboundableEngineError`` for a conditioned model whose engine cannot
    take the values."""
    if not engine.info.conditions:
        return engine
    if isinstance(engine, Int8Engine):
        return engine.bound_to(condition_values(engine.info.conditions, measured))
    if not isinstance(engine, Engine):
        raise UnboundableEngineError(engine)
    model = network(engine)
    condition = condition_vector(model.config, measured).to(engine.device)
    bound = copy.copy(engine)
    bound.module = Conditioned(model, condition).eval()
    return bound
