import mmap

import numpy as np
import pytest
import torch

from models.arch import VCSR, VCSRConfig
from models.engine import Engine, ModelInfo, resolve_device, split_planes, upscaled_like
from models.tiling import plan_tiles
from tests.pages import resident_pages


def make_engine(scale: int = 2) -> Engine:
    torch.manual_seed(0)
    config = VCSRConfig(scale=scale, channels=8, blocks=1)
    model = VCSR(config)
    torch.nn.init.normal_(model.tail.weight, std=0.05)
    info = ModelInfo("test", "VCSR", scale, 0, config.receptive_radius, True, True)
    return Engine(model, info, torch.device("cpu"))


def test_run_maps_uint8_batches_to_uint8_batches_of_scaled_size() -> None:
    out = make_engine(4).run(torch.randint(0, 256, (3, 3, 10, 7), dtype=torch.uint8))
    assert out.dtype == torch.uint8 and out.shape == (3, 3, 40, 28)


def test_run_rejects_other_inputs() -> None:
    with pytest.raises(ValueError, match="uint8 batch"):
        make_engine().run(torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("shape", [(30, 40), (30, 40, 3), (30, 40, 4)])
def test_upscale_image_keeps_the_layout(shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = make_engine().upscale_image(image, tile=24)
    assert out.shape == (60, 80, *shape[2:])


def test_alpha_is_upscaled_separately_and_kept() -> None:
    image = np.zeros((20, 20, 4), np.uint8)
    image[..., 3] = 255
    image[:, :10, 3] = 0  # left half transparent
    out = make_engine().upscale_image(image, tile=64)
    assert out[:, :16, 3].max() < 30 and out[:, 24:, 3].min() > 225


@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 3), (5, 6, 4)])
def test_planes_pasted_into_the_preallocated_output_round_trip(shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
    out, sinks = upscaled_like(image, 1)
    whole = plan_tiles(5, 6, 8, 1)[0]
    for plane, sink in zip(split_planes(image), sinks, strict=True):
        sink.put(plane, whole, 1)
    assert out.shape == image.shape and out.dtype == np.uint8 and np.array_equal(out, image)


def test_split_planes_rejects_two_channels() -> None:
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        split_planes(np.zeros((4, 4, 2), np.uint8))


def test_device_resolution() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="DEVICE=cuda"):
            resolve_device("cuda")


def test_large_allocations_stay_in_the_heap_on_glibc() -> None:
    import platform

    from models.engine import keep_large_allocations

    applied = keep_large_allocations()
    assert applied == (platform.libc_ver()[0] == "glibc")


@pytest.mark.parametrize(("value", "shared"), [("1", True), ("2", False), (None, False)])
def test_one_heap_for_all_threads_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, shared: bool
) -> None:
    from models.engine import threads_share_one_heap

    if value is None:
        monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    else:
        monkeypatch.setenv("MALLOC_ARENA_MAX", value)
    assert threads_share_one_heap() is shared


def test_a_large_output_is_mapped_in_when_it_is_allocated() -> None:
    """Faulted in page by page as tiles are pasted, a 7680×4320 output cost 71 ms of CPU to fill here,
    48 populated at once; and the last tile's share of the faults fell after the model."""
    out, _ = upscaled_like(np.zeros((540, 960, 3), np.uint8), 4)
    assert resident_pages(out) == -(-out.nbytes // mmap.PAGESIZE)  # every page
