"""The small vocabulary the deployments share: folders, statuses, payloads and errors.

Payloads are frozen dataclasses that travel between replicas through Ray's object store; numpy
arrays inside them arrive read-only, which is all the receivers need.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray


class Folder(StrEnum):
    GOOD_QUALITY = "good_quality"
    UPSCALED = "upscaled"
    COULDNT_UPSCALE = "couldn't_upscale"


class Status(StrEnum):
    SUCCESS = "success"
    ERROR = "error"


@dataclass(frozen=True)
class DecodedImage:
    """Validated, orientation-corrected pixels (``H×W``, ``H×W×3`` or ``H×W×4`` uint8) and the
    metadata to carry to the output."""

    pixels: NDArray[np.uint8]
    icc_profile: bytes | None = None
    exif: bytes | None = None

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    extension: str  # without the dot: "png", "jpg", "webp"
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class UpscaledImage:
    image: EncodedImage
    model: str
    scale: int
    precision: str  # the dtype the model ran in: "float32", "bfloat16", "float16"
    tiles: int
    upscale_seconds: float
    encode_seconds: float


@dataclass(frozen=True)
class ModelSummary:
    """One servable model, as ``GET /api/models`` lists it."""

    name: str
    architecture: str
    scale: int
    parameters: int
    file_bytes: int
    description: str
    default: bool
    supports_half: bool
    supports_bfloat16: bool
    psnr: dict[str, float]  # mean PSNR-Y per evaluation set, where an evaluation file ships beside it


@dataclass(frozen=True)
class StoredObject:
    key: str
    url: str
    size: int
    sha256: str
    created: bool  # False when an identical object was already there (an idempotent retry)


class StorageError(RuntimeError):
    """The object could not be stored; nothing partial was left behind."""


class StorageConflictError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"a different object already exists at {key!r}")
        self.key = key


class UpscaleError(RuntimeError):
    """Upscaling this image failed; the original goes to ``couldn't_upscale/``."""
