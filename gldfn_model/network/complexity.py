"""Analytical parameter and multiply-accumulate (MAC) counts of a GLDFN config, layer by layer.

Conventions (those of thop/ptflops, which the paper's tables follow): one MAC = one multiply and its add;
element-wise additions (skips, biases) are not counted; a global average pool counts one MAC per input
element; FilterNorm counts three per filter element (squared deviation, division, gain); the local dynamic
filter counts two per output tap (spatial x channel filter product, then the multiply-accumulate with the
input); the bilinear skip counts four per output value. Per-image work (the GDF's kernel aggregation, the
LDF's channel-filter branch) is counted once per image.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from gldfn_model.network.config import GLDFNConfig

FILTER_NORM_MACS_PER_ELEMENT = 3
LDF_MACS_PER_TAP = 2
BILINEAR_MACS_PER_OUTPUT = 4


@dataclass
class Complexity:
    """Totals and a per-component breakdown (component -> [params, macs])."""

    params: int = 0
    macs: int = 0
    components: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, component: str, params: int, macs: int) -> None:
        self.params += params
        self.macs += macs
        self.components[component][0] += params
        self.components[component][1] += macs

    @property
    def flops(self) -> int:
        """Floating-point operations counting multiply and add separately (2 x MACs)."""
        return 2 * self.macs


def conv_cost(in_channels: int, out_channels: int, kernel: int, pixels: int) -> tuple[int, int]:
    """(params, MACs) of a biased Conv2d applied at ``pixels`` output positions."""
    weights = in_channels * out_channels * kernel * kernel
    return weights + out_channels, weights * pixels


def _add_conv(result: Complexity, component: str, cin: int, cout: int, kernel: int, pixels: int, times: int = 1) -> None:
    params, macs = conv_cost(cin, cout, kernel, pixels)
    result.add(component, params * times, macs * times)


def _add_ldf(result: Complexity, config: GLDFNConfig, pixels: int, times: int) -> None:
    c, taps, hidden = config.channels, config.ldf_kernel_size ** 2, config.ldf_hidden
    _add_conv(result, "ldf.spatial_filter", c, taps, 1, pixels, times)
    result.add("ldf.spatial_filter", 0, FILTER_NORM_MACS_PER_ELEMENT * taps * pixels * times)
    # Channel filter: pool -> 1x1 -> act -> 1x1 at one position per image, FilterNorm, learnable gain.
    result.add("ldf.channel_filter", 0, c * pixels * times)
    _add_conv(result, "ldf.channel_filter", c, hidden, 1, 1, times)
    _add_conv(result, "ldf.channel_filter", hidden, c * taps, 1, 1, times)
    result.add("ldf.channel_filter", c * taps * times, FILTER_NORM_MACS_PER_ELEMENT * c * taps * times)
    result.add("ldf.filtering", 0, LDF_MACS_PER_TAP * c * taps * pixels * times)


def _add_gdf(result: Complexity, config: GLDFNConfig, pixels: int, times: int) -> None:
    c, k, hidden = config.channels, config.gdf_kernels, config.gdf_hidden
    result.add("gdf.attention", 0, c * pixels * times)
    _add_conv(result, "gdf.attention", c, hidden, 1, 1, times)
    _add_conv(result, "gdf.attention", hidden, k, 1, 1, times)
    kernel_weights = c * c * 9
    # K candidate kernels and biases; mixing them costs K MACs per weight, once per image.
    result.add("gdf.kernels", k * (kernel_weights + c) * times, k * (kernel_weights + c) * times)
    result.add("gdf.convolution", 0, kernel_weights * pixels * times)


def count_complexity(config: GLDFNConfig, height: int, width: int) -> Complexity:
    """Parameters and MACs of one forward pass on one LR image of height x width."""
    if height < 1 or width < 1:
        raise ValueError(f"LR size must be positive, got {height}x{width}")
    c, pixels, modules = config.channels, height * width, config.num_modules
    result = Complexity()
    _add_conv(result, "head", 3, c, 3, pixels)
    _add_conv(result, "residual_blocks", c, c, 3, pixels, 3 * config.residual_blocks)

    local_plain = config.local_convs + (0 if config.local_dynamic else 1)
    global_plain = config.global_convs + (0 if config.global_dynamic else 1)
    _add_conv(result, "ddfm.local_convs", c, c, 3, pixels, local_plain * modules)
    _add_conv(result, "ddfm.global_convs", c, c, 3, pixels, global_plain * modules)
    if config.local_dynamic:
        _add_ldf(result, config, pixels, modules)
    if config.global_dynamic:
        _add_gdf(result, config, pixels, modules)

    _add_conv(result, "fusion", 2 * c, c, 1 if config.fusion == "conv1x1" else 3, pixels, config.groups)
    _add_conv(result, "reconstruction", 2 * c, c, 1, pixels)
    _add_conv(result, "reconstruction", c, 3 * config.scale ** 2, 3, pixels)
    result.add("reconstruction", 0, BILINEAR_MACS_PER_OUTPUT * 3 * pixels * config.scale ** 2)
    return result


# Table IV of the paper (LR 180x270, x4): params in millions, "FLOPs" in G (multiply-accumulates).
TABLE_IV = {
    "DANv1": (4.33, 926.72),
    "DANv2": (4.71, 918.12),
    "DCLS": (13.63, 368.15),
    "GLDFN": (14.70, 346.74),
}
TABLE_IV_LR_SIZE = (180, 270)
# Table I (params in millions) of the ablation variants.
TABLE_I_PARAMS = {"A": 14.736, "B": 14.667, "C": 14.695, "D": 14.696}
