"""The int8 engine against the bf16 engine on photographs no one here tuned on: within the rule."""

from pathlib import Path

import numpy as np
import pytest
import torch

from models.conditioning import bind
from models.degrade import jpeg
from models.engine import Engine
from models.int8 import Int8Engine, artefact_path
from models.loader import load_model
from models.metrics import psnr_y
from models.photos import photo_pairs
from models.precision import MAX_IMAGE_LOSS_DB, MAX_LOSS_DB, int8_within_rule, recorded_losses
from models.registry import BUILTIN

# The bundled models the rule serves in int8 (their recorded loss is within it).
SERVED_IN_INT8 = sorted(n for n, s in BUILTIN.items() if int8_within_rule(recorded_losses(s.path)))


def test_some_bundled_models_are_served_in_int8() -> None:
    assert SERVED_IN_INT8, "no bundled model has a recorded int8 loss within the rule"


@pytest.mark.parametrize("name", SERVED_IN_INT8)
def test_int8_loses_at_most_the_rule_against_bf16_on_photographs(shared_dir: Path, name: str) -> None:
    """A degradation-aware model also on the photographs saved as JPEG q50, both engines told so."""
    loaded = load_model(BUILTIN[name].path)
    scale = loaded.info.scale
    bf16 = Engine(loaded.module, loaded.info, torch.device("cpu"), torch.bfloat16)
    int8 = Int8Engine(artefact_path(BUILTIN[name].path), loaded.info)
    uploads: list[tuple[np.ndarray, dict[str, float | None]]] = [(lr, {}) for lr, _ in photo_pairs(scale, shared_dir)]
    if loaded.info.conditions:
        uploads += [(jpeg(lr, 50), {"jpeg_quality": 50}) for lr, _ in photo_pairs(scale, shared_dir)]
    references = [hr for _, hr in photo_pairs(scale, shared_dir)] * (len(uploads) // 6)
    losses = []
    for (lr, told), hr in zip(uploads, references, strict=True):
        ours, theirs = bind(bf16, told), bind(int8, told)
        losses.append(psnr_y(ours.upscale_image(lr), hr, scale) - psnr_y(theirs.upscale_image(lr), hr, scale))
    assert np.mean(losses) <= MAX_LOSS_DB and max(losses) <= MAX_IMAGE_LOSS_DB, losses
