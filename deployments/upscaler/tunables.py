"""The upscaler's ``user_config``: runtime tunables, validated as a model that refuses unknown keys.

Serve hands ``user_config`` to ``Upscaler.reconfigure`` at start and on every ``serve deploy`` that
changes it; a key that is not here (``tile_sise``, ``max_batch_pixel``) fails that deploy instead of
being ignored. Keys left out take their defaults: the config states the whole tuning, not a patch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deployments.upscaler.budget import DEFAULT_BYTES
from models.tiling import DEFAULT_TILE_SIZE

# DEFAULT_TILE_SIZE (1024) lives in models.tiling, with the measurement behind it.
DEFAULT_BATCH_PIXELS = DEFAULT_TILE_SIZE**2  # CPU: bigger batches gain nothing (bench/engine.py)
# CPU: a batch never waits to fill. Bigger batches gain nothing, and the wait fell on every upload's last
# tile, alone in the queue: 10 ms after the model. Tiles already queued still share a batch.
DEFAULT_BATCH_WAIT_S = 0.0
MIN_TILE_SIZE = 64


class UpscalerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_batch_pixels: int = Field(
        default=DEFAULT_BATCH_PIXELS, gt=0, description="input pixels per @serve.batch batch; must hold one tile"
    )
    batch_wait_timeout_s: float = Field(
        default=DEFAULT_BATCH_WAIT_S, ge=0, description="how long a batch waits to fill"
    )
    tile_size: int = Field(default=DEFAULT_TILE_SIZE, ge=MIN_TILE_SIZE, description="tile edge in input pixels")
    # balanced: fewest, evenly spread tiles (least recomputed overlap; CPUs). fixed: every tile
    # tile_size², so all requests' tiles stack into uniform batches (GPUs). models.tiling.LAYOUTS.
    tile_layout: Literal["balanced", "fixed"] = "balanced"
    max_pixel_bytes_in_flight: int = Field(
        default=DEFAULT_BYTES,
        gt=0,
        description="bytes of input and output pixels one replica holds at once; requests beyond it wait (budget.py)",
    )
    torch_threads: int | None = Field(
        default=None, gt=0, description="threads for the forward pass; unset: every core the replica's process may use"
    )

    @model_validator(mode="after")
    def _budget_holds_a_tile(self) -> UpscalerConfig:
        if self.max_batch_pixels < self.tile_size**2:  # Serve fails any single item over the budget
            raise ValueError(
                f"max_batch_pixels={self.max_batch_pixels} must hold one {self.tile_size}×{self.tile_size} tile"
            )
        return self
