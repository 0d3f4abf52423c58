from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from models import int8
from models.arch import VCSR, VCSRConfig
from models.engine import Engine, ModelInfo
from models.int8 import Int8Engine, artefact_matches, artefact_path, weights_digest

CONFIG = VCSRConfig(scale=2, channels=8, blocks=1)
INFO = ModelInfo("tiny", "VCSR", 2, 0, CONFIG.receptive_radius, True, True)


def tiny_module() -> VCSR:
    torch.manual_seed(0)
    module = VCSR(CONFIG).eval()
    torch.nn.init.normal_(module.tail.weight, std=0.05)
    return module


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float OpenVINO model of a tiny random VCSR: the engine's contract does not depend on int8."""
    path = tmp_path_factory.mktemp("int8") / "tiny.int8.xml"
    with torch.no_grad():
        model = ov.convert_model(tiny_module(), example_input=torch.rand(1, 3, 16, 16), input=[(-1, 3, -1, -1)])
    ov.save_model(model, path)
    return path


def test_run_maps_uint8_batches_to_uint8_batches_of_scaled_size(artefact: Path) -> None:
    out = Int8Engine(artefact, INFO).run(torch.randint(0, 256, (3, 3, 10, 7), dtype=torch.uint8))
    assert out.dtype == torch.uint8 and out.shape == (3, 3, 20, 14)


def test_tiles_come_out_channels_last_in_memory_so_pasting_copies_whole_rows(artefact: Path) -> None:
    out = Int8Engine(artefact, INFO).run(torch.randint(0, 256, (2, 3, 10, 7), dtype=torch.uint8))
    assert out.shape == (2, 3, 20, 14) and out.permute(0, 2, 3, 1).is_contiguous()


def test_pixels_match_the_torch_engine_to_rounding(artefact: Path) -> None:
    tiles = torch.randint(0, 256, (2, 3, 24, 24), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    ours = Int8Engine(artefact, INFO).run(tiles).int()
    reference = Engine(tiny_module(), INFO, torch.device("cpu")).run(tiles).int()
    assert (ours - reference).abs().max() <= 1


def test_run_rejects_other_inputs(artefact: Path) -> None:
    with pytest.raises(ValueError, match="uint8 batch"):
        Int8Engine(artefact, INFO).run(torch.rand(1, 3, 8, 8))


def test_a_shape_met_twice_is_compiled_for_itself_and_the_thread_count_is_part_of_it(
    artefact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(int8, "MIN_STATIC_PIXELS", 0)
    engine = Int8Engine(artefact, INFO)
    a = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    b = torch.zeros(1, 3, 16, 24, dtype=torch.uint8)
    engine.run(a)
    assert engine.static_shapes == []  # a first meeting runs on the dynamic-shape model
    for tiles in (b, a, b, a):
        engine.run(tiles)
    threads = torch.get_num_threads()
    assert engine.static_shapes == [(1, 3, 16, 24, threads), (2, 3, 16, 16, threads)]
    torch.set_num_threads(1)
    try:
        engine.run(a)
        engine.run(a)
    finally:
        torch.set_num_threads(threads)
    assert engine.static_shapes[-1] == (2, 3, 16, 16, 1)


def test_static_shapes_are_bounded_least_recently_used_out(artefact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(int8, "MAX_STATIC_SHAPES", 2)
    monkeypatch.setattr(int8, "MIN_STATIC_PIXELS", 0)
    engine = Int8Engine(artefact, INFO)
    for side in (8, 8, 12, 12, 8, 16, 16):
        engine.run(torch.zeros(1, 3, side, side, dtype=torch.uint8))
    assert [key[2] for key in engine.static_shapes] == [8, 16]


def test_one_off_shapes_share_the_dynamic_model_and_give_the_same_pixels(
    artefact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(int8, "MIN_STATIC_PIXELS", 0)
    engine = Int8Engine(artefact, INFO)
    tiles = torch.randint(0, 256, (1, 3, 20, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    dynamic, static = engine.run(tiles), (engine.run(tiles), engine.run(tiles))[1]
    assert engine.static_shapes and (dynamic.int() - static.int()).abs().max() <= 1


def test_a_missing_artefact_names_the_command_that_builds_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="python -m models.quantize"):
        Int8Engine(tmp_path / "none.int8.xml", INFO)


def test_an_artefact_matches_only_the_weights_it_was_built_from(tmp_path: Path, artefact: Path) -> None:
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"weights v1")
    model = ov.Core().read_model(artefact)
    model.set_rt_info(weights_digest(weights), int8.DIGEST_KEY)
    ov.save_model(model, artefact_path(weights))
    assert artefact_path(weights) == tmp_path / "m.int8.xml"
    assert artefact_matches(artefact_path(weights), weights)
    weights.write_bytes(b"weights v2, retrained")
    assert not artefact_matches(artefact_path(weights), weights)
    assert not artefact_matches(artefact, weights)  # no digest recorded at all


def test_upscale_image_tiles_through_the_int8_engine(artefact: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 4), dtype=np.uint8)
    assert Int8Engine(artefact, INFO).upscale_image(image, tile=24).shape == (60, 80, 4)


def test_small_batches_such_as_the_health_probe_never_take_a_static_slot(artefact: Path) -> None:
    engine = Int8Engine(artefact, INFO)
    for _ in range(3):
        engine.run(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    assert engine.static_shapes == []
