"""Parameters and multiply-accumulates (MACs) of any network, counted with forward hooks on one forward pass, by
one set of rules for every network:

- ``nn.Conv2d`` and ``nn.Linear`` modules: one MAC per weight per output position, biases not counted. This is
  torchsummaryX's rule, which DAN's and DCLS's authors used for Table IV ("module MACs").
- ``nn.AdaptiveAvgPool2d`` / ``nn.AvgPool2d`` modules: one MAC per input element ("pooling").
- Work a module does itself, outside its child modules (a convolution with computed weights, a matrix product,
  a dynamic filter, an FFT), is declared by the module: a method ``functional_macs(inputs, output)`` returning
  ``{category: MACs}`` for that call. torchsummaryX sees none of it.
- Element-wise operations (activations, skips, attention products, softmax, clamps) are not counted.

Run it on the meta device (build the model under ``torch.device("meta")``): only shapes are computed, so a
paper-size network counts in well under a second. GLDFN's analytical counter (``complexity.py``) follows the
same rules and is tested equal to this one.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

MODULE = "conv/linear modules"
POOLING = "pooling"
# Categories of declared work that are convolutions or matrix products (an aten-level counter sees these too).
MATMUL_LIKE = ("dynamic_conv", "matmul", "kernel_mixing")


@dataclass
class OpCount:
    """One forward pass: parameters, MACs by category, and parameters and MACs by component (module path with the
    indices of repeated blocks dropped, cut to ``depth`` names)."""

    params: int
    categories: dict[str, int] = field(default_factory=dict)
    components: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> {"params": n, category: MACs}

    @property
    def module_macs(self) -> int:
        """What torchsummaryX counts: nn.Conv2d and nn.Linear modules only."""
        return self.categories.get(MODULE, 0)

    @property
    def macs(self) -> int:
        """Everything the rules count."""
        return sum(self.categories.values())

    @property
    def functional(self) -> dict[str, int]:
        return {name: value for name, value in self.categories.items() if name != MODULE}

    def to_dict(self) -> dict:
        return {
            "params": self.params, "macs": self.macs, "module_macs": self.module_macs,
            "functional_macs": self.functional, "components": self.components,
        }


def _module_rule(module: nn.Module, inputs: tuple, output: Tensor) -> dict[str, int]:
    if isinstance(module, nn.Conv2d):
        per_output = module.weight[0].numel()  # (in / groups) x kh x kw
        return {MODULE: output.numel() * per_output}
    if isinstance(module, nn.Linear):
        return {MODULE: output.numel() * module.in_features}
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AvgPool2d)):
        return {POOLING: inputs[0].numel()}
    return {}


def component_name(path: str, depth: int) -> str:
    parts = [p for p in path.split(".") if p and not re.fullmatch(r"\d+", p)]
    return ".".join(parts[:depth]) or "(top level)"


def count_ops(model: nn.Module, lr_size: tuple[int, int], batch: int = 1, depth: int = 2) -> OpCount:
    """Run ``model`` once on a ``batch x 3 x h x w`` input on the model's device and count by the rules above."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("meta")
    result = OpCount(params=sum(p.numel() for p in model.parameters()))
    categories: dict[str, int] = defaultdict(int)
    components: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def hook_for(path: str, module: nn.Module):
        declared = getattr(module, "functional_macs", None)

        def hook(_: nn.Module, inputs: tuple, output: Tensor) -> None:
            counted = _module_rule(module, inputs, output)
            if declared is not None:
                counted = {**counted, **declared(inputs, output)}
            for category, macs in counted.items():
                categories[category] += macs
                components[component_name(path, depth)][category] += macs

        return hook

    handles = [module.register_forward_hook(hook_for(path, module)) for path, module in model.named_modules()]
    try:
        with torch.inference_mode():
            model(torch.zeros(batch, 3, *lr_size, device=device))
    finally:
        for handle in handles:
            handle.remove()
    for path, parameter in model.named_parameters():
        components[component_name(path.rpartition(".")[0], depth)]["params"] += parameter.numel()
    result.categories = dict(categories)
    result.components = {name: dict(values) for name, values in components.items()}
    return result
