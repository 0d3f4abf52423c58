"""The int8 engine against the bf16 engine on photographs no one here tuned on: within the rule."""

import json
from pathlib import Path

import pytest

from models.evaluate import int8_photo_losses
from models.int8 import artefact_path
from models.precision import MAX_IMAGE_LOSS_DB, MAX_LOSS_DB, int8_within_rule, recorded_losses
from models.registry import BUILTIN

# The bundled models the rule serves in int8 (their recorded loss is within it).
SERVED_IN_INT8 = sorted(n for n, s in BUILTIN.items() if int8_within_rule(recorded_losses(s.path)))
INT8_BUILDS = sorted(n for n, s in BUILTIN.items() if artefact_path(s.path).is_file())


def test_some_bundled_models_are_served_in_int8() -> None:
    assert SERVED_IN_INT8, "no bundled model has a recorded int8 loss within the rule"


@pytest.mark.parametrize("name", SERVED_IN_INT8)
def test_int8_loses_at_most_the_rule_against_bf16_on_photographs(shared_dir: Path, name: str) -> None:
    """A degradation-aware model also on the photographs saved as JPEG q50, both engines told so."""
    weights = BUILTIN[name].path
    for key, loss in int8_photo_losses(weights, name, artefact_path(weights), shared_dir).items():
        assert loss["mean"] <= MAX_LOSS_DB and loss["worst"] <= MAX_IMAGE_LOSS_DB, (key, loss)


@pytest.mark.parametrize("name", INT8_BUILDS)
def test_the_recorded_photo_losses_are_those_of_the_committed_build(shared_dir: Path, name: str) -> None:
    """What the rule read (the eval file) is what the committed artefact does on the photographs now."""
    weights = BUILTIN[name].path
    recorded = json.loads(weights.with_name(f"{name}.eval.json").read_text())["int8_loss_db"]
    measured = int8_photo_losses(weights, name, artefact_path(weights), shared_dir)
    for key, loss in measured.items():
        assert recorded[key] == pytest.approx(loss, abs=2e-4), key
