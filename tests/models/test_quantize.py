import shutil
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from models import quantize
from models.conditioning import bind
from models.degrade import jpeg
from models.engine import Engine
from models.equalize import equalize_stream
from models.evaluate import read_image
from models.int8 import Int8Engine, artefact_matches, artefact_path
from models.loader import load_model, read_metadata
from models.metrics import psnr_y
from models.registry import BUILTIN

NAME = "vcsr-s-x2"  # the smallest bundled model: the recipe is the same for all
HEAD = "__module.head/aten::_convolution/Convolution"  # the first convolution, as OpenVINO names it
TAIL = "__module.tail/aten::_convolution/Convolution"  # the last one
VCSR_MODELS = sorted(n for n, s in BUILTIN.items() if s.config is not None)  # each has an int8 build
REAL_WORLD = [n for n in VCSR_MODELS if read_metadata(BUILTIN[n].path).get("degradation") == "real"]


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
    # Every convolution takes int8 activations, the first and the last included.
    assert len([c for c in convolutions if _takes_int8(c)]) == len(convolutions) == 1 + 2 * 4 + 1


def test_the_residual_stream_and_the_bicubic_base_stay_in_float(train_root: Path, tmp_path: Path) -> None:
    recipe = quantize.Recipe(calibration_crops=2, calibration_side=64)
    assert recipe.stream("vcsr-s-x4") is None
    artefact = quantize.build("vcsr-s-x4", recipe, tmp_path, train_root)
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
    assert convolutions and all(_takes_int8(c) for c in convolutions)


def test_the_first_convolution_reads_the_pixels_losslessly_in_int8(train_root: Path, tmp_path: Path) -> None:
    # Two small crops need not hold a black and a white pixel: the range is pinned, not calibrated.
    recipe = quantize.Recipe(calibration_crops=2, calibration_side=64)
    model = ov.Core().read_model(quantize.build(NAME, recipe, tmp_path, train_root))
    assert _pixel_range(model) == (256, [0.0, 1.0, 0.0, 1.0])


@pytest.mark.parametrize("name", [n for n in VCSR_MODELS if n not in REAL_WORLD])
def test_every_bundled_fidelity_artefact_reads_the_pixels_losslessly_in_int8(name: str) -> None:
    model = ov.Core().read_model(artefact_path(BUILTIN[name].path))
    assert _pixel_range(model) == (256, [0.0, 1.0, 0.0, 1.0])


@pytest.mark.parametrize("name", [n for n in VCSR_MODELS if n not in REAL_WORLD and n.endswith("-x2")])
def test_every_bundled_x2_fidelity_artefact_runs_its_last_convolution_in_int8(name: str) -> None:
    ops = ov.Core().read_model(artefact_path(BUILTIN[name].path)).get_ordered_ops()
    (tail,) = [op for op in ops if op.get_friendly_name() == TAIL]
    assert _takes_int8(tail)


def test_at_x2_the_last_convolution_quantizes_its_input_on_a_quantile_range() -> None:
    # Min/max would stretch the range for one-in-a-million values and coarsen the step for every image.
    class Probe(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tail = torch.nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.tail(x)
            return out

    values = np.arange(-500, 500, dtype=np.float32)  # 1000 values in two crops of 500
    crops = [values[::2].reshape(1, 1, 20, 25), values[1::2].reshape(1, 1, 20, 25)]
    assert quantize.tail_input_range(Probe(), crops, 0.01) == (-491.0, 490.0)  # the 10th from each end
    assert quantize.tail_input_range(Probe(), crops, 1e-6) == (-500.0, 499.0)  # under one value: the extremes


@pytest.mark.parametrize("name", REAL_WORLD)
def test_a_real_world_artefact_keeps_its_first_convolution_in_float(name: str) -> None:
    # Measured: rounding vcsr-real-x2's first convolution cost its worst BSD100 image 0.30 dB.
    ops = ov.Core().read_model(artefact_path(BUILTIN[name].path)).get_ordered_ops()
    (head,) = [op for op in ops if op.get_friendly_name() == HEAD]
    assert not _takes_int8(head)


def test_a_real_world_or_conditioned_network_keeps_its_first_convolution_and_its_x2_last_in_float() -> None:
    assert {quantize.FLOAT_HEAD, quantize.FLOAT_TAIL} <= set(quantize.float_layers(2, fidelity=False))
    assert quantize.FLOAT_TAIL not in quantize.float_layers(4, fidelity=False)
    assert not {quantize.FLOAT_HEAD, quantize.FLOAT_TAIL} & set(quantize.float_layers(2) + quantize.float_layers(4))
    assert quantize.float_layers(2, int8_stream=True) == [r"__module\.phases/.*"]  # only the bicubic base


def test_an_int8_stream_model_adds_in_int8_on_the_quantiles_of_its_stream(train_root: Path, tmp_path: Path) -> None:
    # vcsr-s-x2 passed bench.int8_stream's training-crop check: its additions are int8, every stream
    # quantizer on exactly the recipe's quantiles of that tensor over the calibration crops.
    recipe = quantize.Recipe(calibration_crops=2, calibration_side=64)
    stream = recipe.stream(NAME)
    assert stream is not None and stream.pin_increments
    model = ov.Core().read_model(quantize.build(NAME, recipe, tmp_path, train_root))
    adds = [
        op
        for op in model.get_ordered_ops()
        if op.get_type_name() == "Add" and "aten::add_/Add" in op.get_friendly_name()
    ]
    assert len(adds) == 4 and all(_takes_int8(op) for op in adds)
    points = quantize.stream_points(4)
    calibration = quantize.calibration_inputs(BUILTIN[NAME].path, 2, recipe, train_root)
    extremes = quantize.activation_extremes(load_model(BUILTIN[NAME].path).module, list(points.values()), calibration)
    for source, point in points.items():
        (quantizer,) = [op for op in model.get_ordered_ops() if _quantizes_output_of(op, source)]
        low, high = extremes[point].quantile_range(stream.quantile)
        bounds = [float(quantizer.input_value(port).get_node().get_data().item()) for port in range(1, 5)]
        assert bounds == pytest.approx([low, high, low, high], abs=0), source


@pytest.mark.parametrize("name", [n for n in VCSR_MODELS if n not in REAL_WORLD and n.endswith("-x2")])
def test_the_bundled_x2_fidelity_artefacts_add_in_int8_where_the_recipe_says(name: str) -> None:
    ops = ov.Core().read_model(artefact_path(BUILTIN[name].path)).get_ordered_ops()
    adds = [op for op in ops if op.get_type_name() == "Add" and "aten::add_/Add" in op.get_friendly_name()]
    assert adds and all(_takes_int8(op) == (quantize.Recipe().stream(name) is not None) for op in adds)


@pytest.mark.parametrize("name", VCSR_MODELS)
def test_the_bundled_artefacts_keep_in_float_exactly_the_block_inputs_the_recipe_names(name: str) -> None:
    ops = ov.Core().read_model(artefact_path(BUILTIN[name].path)).get_ordered_ops()
    first = {
        int(op.get_friendly_name().split(".")[2]): _takes_int8(op)
        for op in ops
        if op.get_type_name() == "Convolution" and ".conv1/" in op.get_friendly_name()
    }
    assert first and {block for block, int8 in first.items() if not int8} == set(quantize.Recipe().float_blocks(name))


def test_a_model_with_float_block_inputs_calibrates_on_larger_crops() -> None:
    recipe = quantize.Recipe()
    assert recipe.for_model("vcsr-jpeg-x4").calibration_side == recipe.smooth_calibration_side > recipe.calibration_side
    assert recipe.for_model("vcsr-m-x4") == recipe


def _pixel_range(model: ov.Model) -> tuple[int, list[float]]:
    """The levels and the (input low, input high, output low, output high) of the head's input quantizer."""
    (head,) = [op for op in model.get_ordered_ops() if op.get_friendly_name() == HEAD]
    quantizer = head.input_value(0).get_node()
    assert quantizer.get_type_name() == "FakeQuantize"
    assert quantizer.input_value(0).get_node().get_type_name() == "Parameter"  # the pixels themselves
    bounds = [float(quantizer.input_value(port).get_node().get_data().item()) for port in range(1, 5)]
    return quantizer.get_levels(), bounds


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


class Doubling(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


def test_activation_extremes_give_exact_quantiles_of_a_submodules_input_and_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(quantize, "EXTREMES_PER_CROP", 16)  # each crop keeps its 16 lowest and highest
    module = torch.nn.Sequential()
    module.add_module("twice", Doubling())
    values = np.arange(-500, 500, dtype=np.float32)  # 1000 values in two crops of 500
    crops = [values[::2].reshape(1, 1, 20, 25), values[1::2].reshape(1, 1, 20, 25)]
    extremes = quantize.activation_extremes(module, [("twice", "in"), ("twice", "out")], crops)
    assert extremes[("twice", "in")].count == 1000
    assert extremes[("twice", "in")].quantile_range(0.01) == (-491.0, 490.0)  # the 10th value from each end
    assert extremes[("twice", "out")].quantile_range(0.01) == (-982.0, 980.0)
    assert extremes[("twice", "out")].quantile_range(1e-6) == (-1000.0, 998.0)  # under one value: the extremes
    with pytest.raises(ValueError, match="most extreme values"):
        extremes[("twice", "in")].quantile_range(0.02)  # the 20th value from each end: not kept


def test_the_stream_points_are_the_quantizers_of_an_int8_stream(train_root: Path) -> None:
    # bench.int8_stream's build: the additions quantized too. Every stream point names a node whose output
    # is quantized, and pinning it sets exactly that quantizer's range.
    from bench.int8_stream import stream_int8

    loaded = load_model(BUILTIN[NAME].path, NAME)
    recipe = quantize.Recipe(calibration_crops=2, calibration_side=64)
    model = stream_int8(loaded, quantize.calibration_inputs(BUILTIN[NAME].path, 2, recipe, train_root), set())
    points = quantize.stream_points(4)
    assert len(points) == 1 + 2 * 4
    for source in points:
        quantize.pin_output_range(model, source, -0.25, 0.75)
        (quantizer,) = [op for op in model.get_ordered_ops() if _quantizes_output_of(op, source)]
        assert [float(quantizer.input_value(port).get_node().get_data().item()) for port in range(1, 5)] == [
            -0.25,
            0.75,
            -0.25,
            0.75,
        ]


def test_pinning_an_output_that_is_not_quantized_is_refused() -> None:
    # vcsr-m-x4 keeps its additions in float: the second convolution's output has no quantizer.
    assert quantize.Recipe().stream("vcsr-m-x4") is None
    model = ov.Core().read_model(artefact_path(BUILTIN["vcsr-m-x4"].path))
    with pytest.raises(ValueError, match="no quantizer on the output"):
        quantize.pin_output_range(model, "__module.body.0.conv2/aten::_convolution/Add", 0.0, 1.0)


def _quantizes_output_of(op: ov.Node, source: str) -> bool:
    return op.get_type_name() == "FakeQuantize" and op.input_value(0).get_node().get_friendly_name() == source


def test_a_conditioned_artefact_takes_the_images_values_and_upscales_like_the_float_model(
    train_root: Path, tmp_path: Path, shared_dir: Path
) -> None:
    recipe = quantize.Recipe(calibration_crops=8, calibration_side=96)
    artefact = quantize.build("vcsr-jpeg-x2", recipe, tmp_path, train_root)
    model = ov.Core().read_model(artefact)
    assert [str(i.get_partial_shape()) for i in model.inputs] == ["[?,3,?,?]", "[?,2]"]  # pixels, then the values
    (head,) = [op for op in model.get_ordered_ops() if op.get_friendly_name() == HEAD]
    assert not _takes_int8(head)  # it reads the values: float, as a real-world network's
    loaded = load_model(BUILTIN["vcsr-jpeg-x2"].path)
    hr = read_image(shared_dir / "datasets" / "eval" / "Set14" / "x2" / "img_005_SRF_2_LR.png")[:96, :96]
    image = np.ascontiguousarray(jpeg(np.ascontiguousarray(hr), 30))
    int8 = Int8Engine(artefact, loaded.info)
    told, clean = {"jpeg_quality": 30, "noise": 0.0}, {}
    fp32 = bind(Engine(loaded.module, loaded.info, torch.device("cpu")), told).upscale_image(image)
    bound = bind(int8, told)
    assert psnr_y(bound.upscale_image(image), fp32, 2) > 40.0  # the same picture to within quantization noise
    assert not np.array_equal(bind(int8, clean).upscale_image(image), bound.upscale_image(image))  # values matter
    assert bound._compiled is int8._compiled  # a binding compiles nothing of its own
    with pytest.raises(ValueError, match="bind it first"):
        int8.upscale_image(image)


def test_vcsr_m_x2s_stream_is_equalized_and_only_its_increments_keep_nncfs_ranges(
    train_root: Path, tmp_path: Path
) -> None:
    # Its recipe: the stream rescaled per channel (models.equalize), then every stream quantizer but the
    # increments' on the quantiles of that tensor in the rescaled float network.
    name, path = "vcsr-m-x2", BUILTIN["vcsr-m-x2"].path
    recipe = quantize.Recipe(calibration_crops=2, calibration_side=64)
    stream = recipe.stream(name)
    assert stream is not None and stream.equalize > 0 and not stream.pin_increments
    model = ov.Core().read_model(quantize.build(name, recipe, tmp_path, train_root))
    calibration = quantize.calibration_inputs(path, 2, recipe, train_root)
    module = load_model(path, name).module
    equalize_stream(module, calibration, stream.equalize)
    points = quantize.stream_points(8)
    extremes = quantize.activation_extremes(module, list(points.values()), calibration)
    for source, point in points.items():
        (quantizer,) = [op for op in model.get_ordered_ops() if _quantizes_output_of(op, source)]
        low, high = extremes[point].quantile_range(stream.quantile)
        bounds = [float(quantizer.input_value(port).get_node().get_data().item()) for port in range(1, 5)]
        assert (bounds == pytest.approx([low, high, low, high], abs=1e-6)) != quantize.is_increment(source), source
