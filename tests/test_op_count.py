"""The hook-based op counter: its rules on plain layers, GLDFN's analytical counter, and an aten-level count."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gldfn_model.network.complexity import count_complexity
from gldfn_model.network.config import ABLATION_VARIANTS, get_config
from gldfn_model.network.gldfn import GLDFN
from gldfn_model.network.op_count import MATMUL_LIKE, MODULE, POOLING, component_name, count_ops
from gldfn_model.peers import MODEL_NAMES, build_network


def meta(factory):
    with torch.device("meta"):
        return factory().eval()


def test_rules_on_plain_layers():
    model = meta(lambda: nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, 5),
    ))
    count = count_ops(model, (10, 12))
    full = 8 * 3 * 9 * 10 * 12
    strided_grouped = 8 * (8 // 4) * 9 * 5 * 6
    assert count.categories[MODULE] == full + strided_grouped + 8 * 5
    assert count.categories[POOLING] == 8 * 5 * 6
    assert count.params == sum(p.numel() for p in model.parameters())
    assert count.macs == count.module_macs + count.categories[POOLING]


def test_component_names_drop_block_indices():
    assert component_name("groups.3.blocks.7.local_branch.0", 2) == "groups.blocks"
    assert component_name("", 2) == "(top level)"


@pytest.mark.parametrize("config_name", ["tiny", "small", "paper"])
@pytest.mark.parametrize("ablation", [None, *ABLATION_VARIANTS])
def test_gldfn_counts_equal_the_analytical_ones(config_name, ablation):
    config = get_config(config_name, 4, ablation)
    count = count_ops(meta(lambda: GLDFN(config)), (23, 31))
    analytical = count_complexity(config, 23, 31)
    assert (count.params, count.macs) == (analytical.params, analytical.macs)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_convolutions_and_products_agree_with_atens_counter(name):
    """torch's FlopCounterMode sees every aten convolution and matrix product, inside modules or not: our module
    rule plus the declared dynamic convolutions and products must give the same MACs."""
    model = meta(lambda: build_network(name))
    count = count_ops(model, (30, 36))
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, 3, 30, 36, device="meta"))
    assert count.module_macs + sum(count.categories.get(c, 0) for c in MATMUL_LIKE) == counter.get_total_flops() // 2


def test_batch_scales_the_work_not_the_parameters():
    model = meta(lambda: build_network("danv2"))
    one, two = count_ops(model, (20, 24)), count_ops(model, (20, 24), batch=2)
    assert two.params == one.params and two.macs == 2 * one.macs
