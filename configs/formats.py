"""The image formats the service reads and writes: the one table every other module reads.

Adding a format is a row here (and, for an input, a Pillow plugin that decodes it): the upload check,
the encoder, the ``OUTPUT_FORMAT`` setting, the CLI's ``--format``, the routes' descriptions and media
types, the error text and the web page's choices all derive from ``FORMATS``. It lives in ``configs/``,
the lowest layer, so settings, the deployments and ``serve_app`` may all import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class ImageFormat:
    """One format. ``name`` is the API's word for it (``format=webp``); ``pillow`` is Pillow's format name
    (what ``Image.format`` reads back and ``Image.save(format=...)`` takes); ``extension`` is the stored
    object's, without the dot; ``suffixes`` the file names a client recognises as this format.
    ``encoder_options`` are Pillow's save options for an output (beside the ICC profile and EXIF, which
    every output carries). ``max_side`` is the largest side its encoder can write (None: no limit below
    what the service allows). ``alpha`` says whether it can carry transparency: an output with an alpha
    channel asked in a format without it is written as PNG instead of losing it."""

    name: str
    pillow: str
    title: str  # how people write it: "WebP"
    media_type: str
    extension: str
    suffixes: tuple[str, ...]
    label: str  # the web page's choice: "WebP · smaller"
    output: bool = True
    alpha: bool = True
    max_side: int | None = None
    encoder_options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


FORMATS: tuple[ImageFormat, ...] = (
    # PNG's options depend on PNG_COMPRESS_LEVEL: the encoder sets them (deployments/upscaler/encode.py).
    ImageFormat("png", "PNG", "PNG", "image/png", "png", (".png",), "PNG · lossless"),
    # The largest WebP libwebp writes is 16383 px a side (WEBP_MAX_DIMENSION).
    ImageFormat(
        "webp",
        "WEBP",
        "WebP",
        "image/webp",
        "webp",
        (".webp",),
        "WebP · smaller",
        max_side=16383,
        encoder_options=MappingProxyType({"quality": 90, "method": 4}),
    ),
    # A JPEG's size fields are 16 bits (65535). Chroma kept at full resolution (subsampling 0): upscaled
    # edges are what the user paid for.
    ImageFormat(
        "jpeg",
        "JPEG",
        "JPEG",
        "image/jpeg",
        "jpg",
        (".jpg", ".jpeg"),
        "JPEG · smallest",
        alpha=False,
        max_side=65535,
        encoder_options=MappingProxyType({"quality": 92, "subsampling": 0}),
    ),
)


# The format an output falls back to when the asked one cannot hold it (too large, or an alpha channel
# a format without one would lose), and the default: lossless, with alpha, and no size limit below the
# service's own.
FALLBACK = FORMATS[0]


def spoken(words: Iterable[str]) -> str:
    """``a, b or c``: how the error texts and descriptions list choices."""
    items = list(words)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def outputs() -> tuple[ImageFormat, ...]:
    """The formats an upscaled image may be written in, in the order the page and CLI offer them."""
    return tuple(f for f in FORMATS if f.output)


def output_names() -> tuple[str, ...]:
    return tuple(f.name for f in outputs())


def by_name(name: str) -> ImageFormat:
    """The format the API calls ``name``; KeyError if none."""
    return {f.name: f for f in FORMATS}[name]


def by_pillow(pillow: str) -> ImageFormat:
    """The format Pillow calls ``pillow``; KeyError if none."""
    return {f.pillow: f for f in FORMATS}[pillow]


def inputs_text() -> str:
    """The accepted upload formats as people write them, alphabetically: ``JPEG, PNG or WebP``."""
    return spoken(sorted(f.title for f in FORMATS))


def outputs_text() -> str:
    """The output format names as the API takes them: ``png, webp or jpeg``."""
    return spoken(output_names())


def media_type_of_suffix(suffix: str) -> str | None:
    """The media type of a file named ``*<suffix>`` (any case), or None for a suffix no format has."""
    return next((f.media_type for f in FORMATS if suffix.lower() in f.suffixes), None)


def upload_suffixes() -> frozenset[str]:
    return frozenset(s for f in FORMATS for s in f.suffixes)
