import shutil
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from models import quantize
from models.engine import Engine
from models.evaluate import read_image
from models.int8 import Int8Engine, artefact_matches
from models.loader import load_model
from models.metrics import psnr_y
from models.registry import BUILTIN

NAME = "vcsr-s-x2"  # the smallest bundled model: the recipe is the same for all


@pytest.fixture
def train_root(shared_dir: Path, tmp_path: Path) -> Path:
    """Two of the training images, laid out as the training set is (calibration reads only these)."""
    root = tmp_path / "train"
    (root / "BSD200").mkdir(parents=True)
    for image in sorted((shared_dir / "datasets" / "train" / "BSD200").glob("*.png"))[:2]:
        shutil.copy(image, root / "BSD200" / image.name)
    return root


def test_the_script_writes_an_int8_artefact_of_the_current_weights(train_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "artefacts"
    assert quantize.main(["--model", NAME, "--out", str(out), "--root", str(train_root)]) == 0
    artefact = out / f"{NAME}.int8.xml"
    assert artefact.is_file() and artefact.with_suffix(".bin").is_file()
    assert artefact_matches(artefact, BUILTIN[NAME].path)
    ops = ov.Core().read_model(artefact).get_ordered_ops()
    convolutions = [op for op in ops if op.get_type_name() == "Convolution"]
    # Every convolution but the first and the last takes int8 activations.
    assert len([c for c in convolutions if _takes_int8(c)]) == len(convolutions) - 2 == 2 * 4


def test_the_residual_stream_and_the_bicubic_base_stay_in_float(train_root: Path, tmp_path: Path) -> None:
    artefact = quantize.build(NAME, quantize.Recipe(calibration_crops=2, calibration_side=64), tmp_path, train_root)
    ops = ov.Core().read_model(artefact).get_ordered_ops()
    adds = [op for op in ops if op.get_type_name() == "Add" and "aten::add" in op.get_friendly_name()]
    assert len(adds) == 4 + 1  # one per residual block, and the base's
    assert not [op.get_friendly_name() for op in adds if _takes_int8(op)]
    # The base is a float phase convolution, not OpenVINO's slow Interpolate.
    assert not [op for op in ops if op.get_type_name() == "Interpolate"]
    assert [op for op in ops if op.get_type_name() == "GroupConvolution" and not _takes_int8(op)]


def test_at_x4_the_last_convolution_is_int8_as_well(train_root: Path, tmp_path: Path) -> None:
    recipe = quantize.Recipe(calibration_crops=2, calibration_side=64)
    ops = ov.Core().read_model(quantize.build("vcsr-s-x4", recipe, tmp_path, train_root)).get_ordered_ops()
    convolutions = [op for op in ops if op.get_type_name() == "Convolution"]
    assert [c.get_friendly_name() for c in convolutions if not _takes_int8(c)] == [
        "__module.head/aten::_convolution/Convolution"
    ]


def _takes_int8(op: ov.Node) -> bool:
    return any(value.get_node().get_type_name() == "FakeQuantize" for value in op.input_values())


def test_the_artefact_upscales_like_the_float_model(train_root: Path, tmp_path: Path, shared_dir: Path) -> None:
    recipe = quantize.Recipe(calibration_crops=8, calibration_side=96)
    artefact = quantize.build(NAME, recipe, tmp_path, train_root)
    loaded = load_model(BUILTIN[NAME].path)
    image = read_image(shared_dir / "datasets" / "eval" / "Set14" / "x2" / "img_005_SRF_2_LR.png")[:96, :96]
    fp32 = Engine(loaded.module, loaded.info, torch.device("cpu")).upscale_image(np.ascontiguousarray(image))
    int8 = Int8Engine(artefact, loaded.info).upscale_image(np.ascontiguousarray(image))
    assert psnr_y(int8, fp32, 2) > 40.0  # the same picture to within quantization noise
