import pytest
import torch

from models.arch import VCSR, VCSRConfig, flops_per_output_pixel
from models.registry import BUILTIN


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_registered_architecture_runs_forward_with_random_weights(name: str) -> None:
    config = BUILTIN[name].config
    assert config is not None
    model = VCSR(config).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 20, 17))
    assert out.shape == (2, 3, 20 * config.scale, 17 * config.scale)


def test_untrained_network_is_exactly_bicubic() -> None:
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        out = VCSR(VCSRConfig(scale=2)).eval()(x)
    expected = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.equal(out, expected)


def test_config_rejects_unsupported_scale() -> None:
    with pytest.raises(ValueError, match="scale must be 2, 3 or 4"):
        VCSRConfig(scale=8)


def test_flops_count_matches_the_convolutions() -> None:
    config = VCSRConfig(scale=2, channels=4, blocks=1)
    # head 3→4, two 4→4 convs, tail 4→12; 9 taps each, ×2 for multiply-add, per input pixel / 4.
    assert flops_per_output_pixel(config) == 2 * 9 * (12 + 32 + 48) / 4
