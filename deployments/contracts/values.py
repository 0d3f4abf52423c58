"""The values the deployments exchange: folders, statuses, payloads and outcomes.

Payloads are frozen dataclasses that travel between replicas through Ray's object store; numpy
arrays inside them arrive read-only, which is all the receivers need. The handles that carry them are
typed in ``handles.py``; errors live in ``errors.py``.
"""

from __future__ import annotations

import operator
import pickle
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, SupportsIndex

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

    @property
    def channels(self) -> int:
        return 1 if self.pixels.ndim == 2 else int(self.pixels.shape[2])


@dataclass(frozen=True)
class Degradation:
    """What the flow measured on an upload that a degradation-aware model is conditioned on (the names
    of ``models.arch.CONDITIONS``): the JPEG quality read from its tables (``None``: not a JPEG) and the
    noise σ per colour channel in 8-bit levels, both measured on the upload's own pixels. The default is
    a clean upload; a plain model ignores it."""

    jpeg_quality: int | None = None
    noise: float = 0.0

    def values(self) -> dict[str, float | None]:
        """By condition name, as ``models.conditioning.bind`` takes them."""
        return {"jpeg_quality": self.jpeg_quality, "noise": self.noise}


OUT_OF_BAND_BYTES = 4 << 20


@dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes and what storage records of it. Pickled by Ray (protocol 5), ``data`` goes
    out of band: Ray copies it into the object store once and the receiver makes its bytes from there,
    instead of copying it into the pickle stream and out again (a 17.5 MB ×4 output: 33-37 ms per hop
    between two replicas in the pickle stream, 18-22 ms out of band). Files under ``OUT_OF_BAND_BYTES``
    (an upload stored as it came) stay in the stream: a copy of them costs a millisecond or two."""

    data: bytes
    extension: str  # without the dot (configs.formats.ImageFormat.extension)
    content_type: str
    width: int
    height: int

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        apart = operator.index(protocol) >= 5 and len(self.data) >= OUT_OF_BAND_BYTES
        data = pickle.PickleBuffer(self.data) if apart else self.data
        return _encoded_image, (data, self.extension, self.content_type, self.width, self.height)


def _encoded_image(
    data: bytes | memoryview | pickle.PickleBuffer, extension: str, content_type: str, width: int, height: int
) -> EncodedImage:
    return EncodedImage(bytes(data), extension, content_type, width, height)


@dataclass(frozen=True)
class UpscaledImage:
    image: EncodedImage
    model: str
    scale: int
    precision: str  # what the model ran in: "float32", "bfloat16", "float16" or "int8"
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
    # The quality policy's family this model serves at its scale ("fidelity" or "real"), if any.
    routed_as: str | None = None
    # What a degradation-aware model is conditioned on (names of ``Degradation.values``: "jpeg_quality",
    # "noise"), empty for a plain model. The flow measures only what the routed model reads.
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredObject:
    key: str
    url: str
    size: int
    sha256: str
    created: bool  # False when an identical object was already there (an idempotent retry)
    stem: str = ""  # the client's file name as storage sanitised it into the key
    pending: bool = False  # True when it waits in the local spool for the bucket (key and url are final)


@dataclass(frozen=True)
class SpoolStatus:
    """The storage spool as ``/api/health`` and the metrics show it."""

    objects: int
    bytes: int
    oldest_age_s: float | None  # None when empty
    max_bytes: int
    bucket_reachable: bool


@dataclass(frozen=True)
class Outcome:
    """What became of one accepted image: the flow's answer, with no HTTP in it. The sync route
    renders it as the upload JSON; the jobs consumer records it as an item's result."""

    folder: Folder
    status: Status
    message: str
    original_key: str
    stored: StoredObject
    quality_score: float
    width: int
    height: int
    output_width: int
    output_height: int
    processed_at: datetime
    upscale_scale: int | None = None
    model: str | None = None
    precision: str | None = None
    tiles: int | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    # The no-reference metrics (deployments/flow/quality.py) and the quality-policy rule that routed the image.
    quality_metrics: dict[str, float | int | None] | None = None
    route: str | None = None


@dataclass(frozen=True)
class NewFile:
    """One accepted file of a job (validated by the ingress as the upload route validates it)."""

    filename: str | None
    image: EncodedImage


@dataclass(frozen=True)
class NewJob:
    """A job as the ingress hands it to the jobs deployment."""

    files: list[NewFile]
    model: str | None
    format: str | None
    webhook_url: str | None
    owner: str
