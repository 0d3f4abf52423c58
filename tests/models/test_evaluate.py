"""The evaluation protocol reproduces the literature's bicubic figures (shared/datasets/README.md)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.evaluate import (
    DEGRADED_SETTINGS,
    bicubic,
    degrade_named,
    degraded_benchmark,
    read_image,
    setting_condition,
)
from models.metrics import psnr_y

PUBLISHED = {
    ("Set5", 2): 33.66, ("Set14", 2): 30.24, ("BSD100", 2): 29.56,
    ("Set5", 4): 28.42, ("Set14", 4): 26.00, ("BSD100", 4): 25.96,
}  # fmt: skip


@pytest.mark.parametrize(("dataset", "scale"), sorted(PUBLISHED))
def test_bicubic_reproduces_the_published_psnr_within_0_02_db(shared_dir: Path, dataset: str, scale: int) -> None:
    folder = shared_dir / "datasets" / "eval" / dataset / f"x{scale}"
    scores = [
        psnr_y(bicubic(read_image(Path(str(hr).replace("_HR", "_LR"))), scale), read_image(hr), scale)
        for hr in sorted(folder.glob("*_HR.png"))
    ]
    assert len(scores) == {"Set5": 5, "Set14": 14, "BSD100": 100}[dataset]
    assert float(np.mean(scores)) == pytest.approx(PUBLISHED[(dataset, scale)], abs=0.02)


def test_bicubic_keeps_greyscale_images_greyscale() -> None:
    grey = np.zeros((4, 5), np.uint8)
    assert bicubic(grey, 2).shape == (8, 10)


def test_named_degradations_are_seeded_per_image_and_keep_greyscale_grey() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    for setting in DEGRADED_SETTINGS:
        once, twice = degrade_named(rgb, setting, "a"), degrade_named(rgb, setting, "a")
        assert once.shape == rgb.shape and (once == twice).all()
    assert (degrade_named(rgb, "clean", "a") == rgb).all()
    assert not (degrade_named(rgb, "noise5+jpeg75", "a") == degrade_named(rgb, "noise5+jpeg75", "b")).all()
    assert degrade_named(rgb[..., 0], "noise10+jpeg75", "a").shape == (24, 32)


def test_the_degraded_benchmark_scores_every_model_against_the_clean_image(tmp_path: Path) -> None:
    write_tiny_set(tmp_path / "Tiny" / "x2")
    report = degraded_benchmark(["vcsr-s-x2"], ["Tiny"], ["clean", "jpeg30"], tmp_path, torch.device("cpu"))
    clean, jpeg = report["settings"]["clean"]["Tiny"], report["settings"]["jpeg30"]["Tiny"]
    assert clean["vcsr-s-x2"]["psnr"] > jpeg["vcsr-s-x2"]["psnr"] and clean["bicubic"]["psnr"] > jpeg["bicubic"]["psnr"]
    assert set(clean["images"]["img_001_SRF_2"]) == {"bicubic", "vcsr-s-x2"}


def bicubic_down(hr: np.ndarray) -> np.ndarray:
    image = Image.fromarray(hr)
    return np.asarray(image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC))


def test_a_degradation_aware_model_gets_what_the_service_would_measure_on_each_setting() -> None:
    assert setting_condition("clean") == {"jpeg_quality": None, "noise": 0.0}
    assert setting_condition("jpeg50") == {"jpeg_quality": 50, "noise": 0.0}
    assert setting_condition("noise5+jpeg75") == {"jpeg_quality": 75, "noise": 0.0}  # no noise seen under a JPEG
    assert setting_condition("blur1.6") == {"jpeg_quality": None, "noise": 0.0}


def test_int8_is_measured_against_the_recorded_fp32_scores_and_recorded_beside_them(tmp_path: Path) -> None:
    import json
    import shutil

    from models.evaluate import main
    from models.int8 import artefact_path
    from models.registry import BUILTIN

    weights = BUILTIN["vcsr-m-x4"].path
    for path in (weights, artefact_path(weights), artefact_path(weights).with_suffix(".bin")):
        shutil.copy(path, tmp_path / path.name)
    recorded = json.loads(weights.with_name("vcsr-m-x4.eval.json").read_text())
    report = tmp_path / "vcsr-m-x4.eval.json"
    report.write_text(json.dumps({"sets": {"Set5": recorded["sets"]["Set5"]}, "precision_loss_db": {"bf16": 0.01}}))
    assert main(["--weights", str(tmp_path / weights.name), "--int8", "--json", str(report)]) == 0
    written = json.loads(report.read_text())
    by_set = written["int8_loss_db"]
    assert set(by_set) == {"Set5", "photos"}  # the sets of the file, and the photographs against bf16
    assert by_set == {k: recorded["int8_loss_db"][k] for k in by_set}  # the same build, the same loss
    assert written["precision_loss_db"] == {
        "bf16": 0.01,
        "int8": max(v["mean"] for v in by_set.values()),
        "int8_worst_image": max(v["worst"] for v in by_set.values()),
    }
    assert written["sets"]["Set5"] == recorded["sets"]["Set5"]


def test_a_degradation_aware_model_file_is_evaluated_and_its_precision_loss_measured_as_on_a_clean_upload(
    tmp_path: Path,
) -> None:
    """What the precision rule reads (``precision_loss_db``), so the service may run it in bf16."""
    import json

    from models.evaluate import main
    from tests.tiny_models import conditioned_model_file

    write_tiny_set(tmp_path / "Set5" / "x2")
    weights, report = conditioned_model_file(tmp_path / "c.safetensors"), tmp_path / "c.eval.json"
    args = ["--weights", str(weights), "--sets", "Set5", "--root", str(tmp_path), "--device", "cpu"]
    assert main([*args, "--precision", "--json", str(report)]) == 0
    written = json.loads(report.read_text())
    assert written["sets"]["Set5"]["mean"]["psnr"] > 0 and "precision_loss_db" in written


def write_tiny_set(folder: Path) -> None:
    """One 64×48 gradient image and its bicubic ×2 input, laid out as an evaluation set's ``x2`` folder."""
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:48, 0:64]
    hr = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)
    Image.fromarray(hr).save(folder / "img_001_SRF_2_HR.png")
    Image.fromarray(bicubic_down(hr)).save(folder / "img_001_SRF_2_LR.png")
