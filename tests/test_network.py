import pytest
import torch

from gldfn_model.network.config import GLDFNConfig, get_config
from gldfn_model.network.dynamic_layers import (
    GlobalDynamicFilter,
    LocalDynamicFilter,
    gdf_temperature,
    set_gdf_temperature,
)
from gldfn_model.network.gldfn import GLDFN

MICRO = GLDFNConfig(channels=8, groups=2, modules_per_group=1, residual_blocks=1, ldf_squeeze=0.5)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(9, 13), (16, 16)])
def test_output_shape(scale, size):
    model = GLDFN(GLDFNConfig(**{**MICRO.to_dict(), "scale": scale})).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert torch.isfinite(out).all()


def test_named_configs_build():
    assert GLDFN(get_config("tiny")).config.channels < GLDFN(get_config("small")).config.channels
    paper = get_config("paper")
    assert (paper.groups, paper.modules_per_group, paper.channels) == (5, 10, 64)


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="scale"):
        GLDFNConfig(scale=5)
    with pytest.raises(ValueError, match="unknown config"):
        get_config("huge")


@pytest.mark.parametrize("variant,ldf,gdf", [("A", 0, 0), ("B", 0, 1), ("C", 1, 0), ("D", 1, 1)])
def test_ablation_variants_swap_dynamic_layers(variant, ldf, gdf):
    model = GLDFN(get_config("tiny", ablation=variant))
    modules = get_config("tiny").num_modules
    assert sum(isinstance(m, LocalDynamicFilter) for m in model.modules()) == ldf * modules
    assert sum(isinstance(m, GlobalDynamicFilter) for m in model.modules()) == gdf * modules


def test_gdf_batch_folded_equals_per_sample_loop():
    torch.manual_seed(0)
    layer = GlobalDynamicFilter(6, kernels=4, reduction=2).double()
    x = torch.randn(3, 6, 7, 5, dtype=torch.float64)
    batched = layer(x)
    for i in range(3):
        pi = layer.attention_weights(x[i : i + 1])[0]
        weight = torch.einsum("k,koiyx->oiyx", pi, layer.weight)
        bias = pi @ layer.bias
        single = torch.nn.functional.conv2d(x[i : i + 1], weight, bias, padding=1)
        torch.testing.assert_close(batched[i : i + 1], single)


def test_gdf_temperature_only_in_training():
    torch.manual_seed(0)
    layer = GlobalDynamicFilter(4, kernels=4, reduction=2)
    x = torch.randn(1, 4, 5, 5)
    set_gdf_temperature(layer, 30.0)
    layer.train()
    hot = layer.attention_weights(x)
    layer.eval()
    cold = layer.attention_weights(x)
    assert hot.max() - hot.min() < cold.max() - cold.min()
    assert gdf_temperature(0, 100) == 30.0 and gdf_temperature(50, 100) == pytest.approx(15.5) and gdf_temperature(500, 100) == 1.0


def test_model_trains_one_step():
    model = GLDFN(MICRO)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32)
    loss = (model(lr) - hr).abs().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    opt.step()
    assert (model(lr) - hr).abs().mean() < loss
