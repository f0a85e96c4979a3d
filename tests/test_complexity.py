import pytest
import torch
from torch import nn

from gldfn_model.network.complexity import count_complexity
from gldfn_model.network.config import GLDFNConfig, get_config
from gldfn_model.network.gldfn import GLDFN


@pytest.mark.parametrize("name", ["tiny", "small", "paper"])
@pytest.mark.parametrize("ablation", [None, "A", "B", "C"])
def test_param_count_equals_model(name, ablation):
    config = get_config(name, 4, ablation)
    model = GLDFN(config)
    assert count_complexity(config, 10, 10).params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("scale", [2, 3])
def test_param_count_other_scales(scale):
    config = get_config("tiny", scale)
    assert count_complexity(config, 10, 10).params == sum(p.numel() for p in GLDFN(config).parameters())


def test_paper_config_matches_published_complexity():
    result = count_complexity(get_config("paper", 4), 180, 270)
    assert abs(result.params / 14.70e6 - 1) <= 0.05
    assert abs(result.macs / 346.74e9 - 1) <= 0.10


def test_macs_of_a_micro_config_by_hand():
    # C=4, one group of one module, no residual blocks, LDF k=3 hidden 2, GDF K=2 hidden 2, x2, LR 5x6.
    config = GLDFNConfig(channels=4, groups=1, modules_per_group=1, residual_blocks=0, gdf_kernels=2,
                         gdf_reduction=2, ldf_squeeze=0.5, scale=2)
    p = 5 * 6
    head = 3 * 4 * 9 * p
    local_convs = 2 * 4 * 4 * 9 * p
    ldf = (4 * 9 * p) + 3 * 9 * p + (4 * p) + (4 * 2) + (2 * 36) + 3 * 36 + 2 * 4 * 9 * p
    global_convs = 4 * 4 * 9 * p
    gdf = (4 * p) + (4 * 2) + (2 * 2) + 2 * (4 * 4 * 9 + 4) + 4 * 4 * 9 * p
    fusion = 8 * 4 * p
    recon = 8 * 4 * p + 4 * 12 * 9 * p + 4 * 3 * p * 4
    assert count_complexity(config, 5, 6).macs == head + local_convs + ldf + global_convs + gdf + fusion + recon


def test_conv_macs_agree_with_forward_hooks():
    """Every nn.Conv2d the model really runs, counted at its real output size, is in the analytical total."""
    config = get_config("tiny", 4)
    model = GLDFN(config).eval()
    counted = []

    def hook(module, inputs, output):
        counted.append(module.in_channels * module.out_channels * module.kernel_size[0] * module.kernel_size[1] * output.shape[2] * output.shape[3])

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.rand(1, 3, 12, 10))
    components = count_complexity(config, 12, 10).components
    static_conv_macs = sum(components[k][1] for k in ("head", "residual_blocks", "ddfm.local_convs", "ddfm.global_convs", "fusion"))
    static_conv_macs += components["reconstruction"][1] - 4 * 3 * 12 * 10 * 16
    static_conv_macs += config.num_modules * (config.channels * config.ldf_kernel_size ** 2 * 12 * 10)  # LDF spatial 1x1 conv
    static_conv_macs += config.num_modules * (config.channels * config.ldf_hidden + config.ldf_hidden * config.channels * 9)  # channel branch
    static_conv_macs += config.num_modules * (config.channels * config.gdf_hidden + config.gdf_hidden * config.gdf_kernels)  # attention
    assert sum(counted) == static_conv_macs


def test_bad_size_rejected():
    with pytest.raises(ValueError):
        count_complexity(get_config("tiny"), 0, 5)
