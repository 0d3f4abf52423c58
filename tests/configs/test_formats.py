"""The image-format table: the one place formats are declared, and every consumer derives from it."""

import argparse
import io
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from configs import formats
from configs.formats import ImageFormat
from configs.settings import SettingsError, load_settings
from deployments.flow.flow import output_format
from deployments.upscaler.encode import encode
from serve_app.commands import add_upload
from serve_app.upload import collect

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("configs", "deployments", "serve_app")

# Pillow writes TIFF too: a format the service does not have, added as one row.
TIFF = ImageFormat(
    "tiff", "TIFF", "TIFF", "image/tiff", "tif", (".tif", ".tiff"), "TIFF · archival", max_side=1000,
    encoder_options={"compression": "tiff_lzw"},
)  # fmt: skip


@pytest.fixture
def with_tiff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, TIFF))


def cli_format_choices() -> list[str]:
    parser = argparse.ArgumentParser()
    add_upload(parser.add_subparsers())
    upload = next(a for a in parser._subparsers._group_actions[0].choices.values())  # type: ignore[union-attr]
    return list(next(a for a in upload._actions if a.dest == "fmt").choices)


def test_the_table_lists_the_formats_the_service_always_had() -> None:
    assert formats.output_names() == ("png", "webp", "jpeg")
    assert formats.inputs_text() == "JPEG, PNG or WebP"
    assert formats.outputs_text() == "png, webp or jpeg"
    assert formats.upload_suffixes() == {".png", ".webp", ".jpg", ".jpeg"}
    assert formats.FALLBACK.name == "png" and formats.FALLBACK.alpha and formats.FALLBACK.max_side is None


def test_a_row_added_to_the_table_is_an_output_everywhere(with_tiff: None, tmp_path: Path) -> None:
    assert "tiff" in cli_format_choices()
    assert load_settings(output_format="tiff").output_format == "tiff"
    assert output_format("tiff", 600, 400, scale=2) == "png"  # past its max_side: the fallback
    assert output_format("tiff", 400, 300, scale=2) == "tiff"
    encoded = encode(np.zeros((4, 6, 3), np.uint8), "tiff")
    assert (encoded.extension, encoded.content_type) == ("tif", "image/tiff")
    (tmp_path / "scan.TIFF").write_bytes(encoded.data)
    assert collect([tmp_path], recursive=False)[0] == [tmp_path / "scan.TIFF"]
    assert formats.media_type_of_suffix(".TIF") == "image/tiff"
    assert formats.media_type_of_suffix(".gif") is None


def test_settings_refuse_a_format_the_table_does_not_have() -> None:
    with pytest.raises(SettingsError, match=r"OUTPUT_FORMAT=gif: invalid, expected png, webp or jpeg"):
        load_settings(output_format="gif")


def test_a_format_that_is_input_only_is_no_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, replace(TIFF, output=False)))
    assert "tiff" not in cli_format_choices()
    with pytest.raises(SettingsError):
        load_settings(output_format="tiff")


def test_the_encoder_writes_each_format_with_its_table_options() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    for fmt in formats.outputs():
        encoded = encode(pixels, fmt.name)
        assert (encoded.extension, encoded.content_type) == (fmt.extension, fmt.media_type)
        assert Image.open(io.BytesIO(encoded.data)).format == fmt.pillow


def test_no_shipped_module_but_the_table_lists_media_types_or_suffixes() -> None:
    """The table is the only place a format's media type or file suffix is written."""
    listed = re.compile(r"""["'](image/(png|jpeg|webp)|\.(png|jpe?g|webp))["']""")
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for package in SHIPPED
        for path in sorted((REPO / package).rglob("*.py"))
        if path != REPO / "configs" / "formats.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if listed.search(line)
    ]
    assert offenders == []
