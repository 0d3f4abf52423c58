import pytest
import torch

from models.arch import (
    VCSR,
    Conditioned,
    PhaseBicubic,
    VCSRConfig,
    condition_vector,
    deepen,
    flops_per_output_pixel,
    use_phase_base,
    widen_head,
)
from models.registry import BUILTIN, CANDIDATES


@pytest.mark.parametrize("name", sorted({**BUILTIN, **CANDIDATES}))
def test_every_registered_architecture_runs_forward_with_random_weights_and_its_conditions(name: str) -> None:
    config = {**BUILTIN, **CANDIDATES}[name].config
    assert config is not None
    model = VCSR(config).eval()
    condition = (
        condition_vector(config, {"jpeg_quality": 50, "noise": 5.0}).expand(2, -1) if config.conditions else None
    )
    with torch.no_grad():
        out = model(torch.rand(2, 3, 20, 17), condition)
    assert out.shape == (2, 3, 20 * config.scale, 17 * config.scale)


def test_untrained_network_is_exactly_bicubic() -> None:
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        out = VCSR(VCSRConfig(scale=2)).eval()(x)
    expected = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_phase_convolution_is_pytorchs_bicubic_upsample_edges_included(scale: int) -> None:
    x = torch.rand(2, 3, 13, 9)  # odd sizes: every edge case of the clamped reads
    expected = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    out = torch.nn.PixelShuffle(scale)(PhaseBicubic(scale, 3)(x))
    assert out.shape == expected.shape
    assert torch.allclose(out, expected, atol=1e-5)


def test_a_network_with_the_phase_base_computes_the_same_image_and_keeps_its_weights_file() -> None:
    model = VCSR(VCSRConfig(scale=4, conditions=("noise",))).eval()
    torch.nn.init.normal_(model.tail.weight, std=0.05)
    bound = Conditioned(model, condition_vector(model.config, {"noise": 5.0}))
    x = torch.rand(1, 3, 24, 24)
    keys = set(model.state_dict())
    with torch.no_grad():
        expected = bound(x)
        out = use_phase_base(bound)(x)
    assert model.phase_base
    assert torch.allclose(out, expected, atol=1e-5)
    assert set(model.state_dict()) == keys  # the fixed kernels are not weights


def test_config_rejects_unsupported_scale() -> None:
    with pytest.raises(ValueError, match="scale must be 2, 3 or 4"):
        VCSRConfig(scale=8)


def test_flops_count_matches_the_convolutions() -> None:
    config = VCSRConfig(scale=2, channels=4, blocks=1)
    # head 3→4, two 4→4 convs, tail 4→12; 9 taps each, ×2 for multiply-add, per input pixel / 4.
    assert flops_per_output_pixel(config) == 2 * 9 * (12 + 32 + 48) / 4


CONDITIONED = VCSRConfig(scale=2, channels=8, blocks=1, conditions=("jpeg_quality", "noise"))


def test_a_conditioned_network_refuses_to_run_without_its_condition() -> None:
    with pytest.raises(ValueError, match="conditioned on"):
        VCSR(CONDITIONED)(torch.rand(1, 3, 8, 8))


def test_condition_values_are_scaled_and_a_png_counts_as_jpeg_quality_100() -> None:
    assert torch.allclose(condition_vector(CONDITIONED, {"jpeg_quality": 50, "noise": 5.0}), torch.tensor([[0.5, 0.2]]))
    assert condition_vector(CONDITIONED, {"jpeg_quality": None, "noise": 60.0}).tolist() == [[1.0, 1.0]]
    assert condition_vector(CONDITIONED, {}).tolist() == [[1.0, 0.0]]


def test_config_rejects_an_unknown_condition() -> None:
    with pytest.raises(ValueError, match="conditions must be among"):
        VCSRConfig(scale=2, conditions=("blur",))


def test_a_conditioned_network_made_from_a_plain_one_starts_as_exactly_that_network() -> None:
    torch.manual_seed(0)
    plain = VCSR(VCSRConfig(scale=2, channels=8, blocks=1))
    torch.nn.init.normal_(plain.tail.weight, std=0.1)
    conditioned = VCSR(CONDITIONED)
    conditioned.load_state_dict(widen_head(plain.state_dict(), CONDITIONED), strict=True)
    x = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        for values in ({"jpeg_quality": 30, "noise": 0.0}, {"jpeg_quality": None, "noise": 10.0}):
            bound = Conditioned(conditioned, condition_vector(CONDITIONED, values))
            assert torch.allclose(bound(x), plain(x), atol=1e-6)


def test_a_deeper_network_made_from_a_shallower_one_starts_as_exactly_that_network_and_learns() -> None:
    torch.manual_seed(2)
    shallow = VCSR(VCSRConfig(scale=2, channels=8, blocks=1))
    torch.nn.init.normal_(shallow.tail.weight, std=0.1)
    deep = VCSR(VCSRConfig(scale=2, channels=8, blocks=3))
    deep.load_state_dict(deepen(shallow.state_dict(), deep), strict=True)
    x = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        assert torch.allclose(deep(x), shallow(x), atol=1e-6)
    assert deep.body[2].conv1.weight.abs().sum() > 0  # the new block's gradient reaches its zero conv2
    deep(x).square().mean().backward()
    assert deep.body[2].conv2.weight.grad is not None and deep.body[2].conv2.weight.grad.abs().sum() > 0


def test_a_bound_network_runs_like_the_explicit_call() -> None:
    torch.manual_seed(1)
    model = VCSR(CONDITIONED).eval()
    torch.nn.init.normal_(model.tail.weight, std=0.1)
    condition = condition_vector(CONDITIONED, {"jpeg_quality": 40, "noise": 3.0})
    x = torch.rand(3, 3, 10, 9)
    with torch.no_grad():
        assert torch.equal(Conditioned(model, condition)(x), model(x, condition.expand(3, -1)))
