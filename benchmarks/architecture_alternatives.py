"""Parameters and MACs (x4, LR 180x270) of the readings of the paper considered for the `paper` config,
against the published 14.70 M / 346.74 G. The table in docs/architecture.md is this script's output.

    python benchmarks/architecture_alternatives.py
"""
from __future__ import annotations

from dataclasses import replace

from gldfn_model.network.complexity import TABLE_IV, count_complexity
from gldfn_model.network.config import GLDFNConfig, get_config

PAPER_PARAMS = TABLE_IV["GLDFN"][0] * 1e6
PAPER_MACS = TABLE_IV["GLDFN"][1] * 1e9
chosen = get_config("paper", 4)
ALTERNATIVES: dict[str, GLDFNConfig] = {
    "chosen: local 2 conv + LDF, global 1 conv + GDF, r=0.70, 1 RB": chosen,
    "literal: both branches 2 conv + dynamic layer, r=0.2": replace(chosen, global_convs=2, ldf_squeeze=0.2),
    "literal at 56 channels": replace(chosen, global_convs=2, ldf_squeeze=0.2, channels=56),
    "both branches 1 conv + dynamic layer, r=0.2": replace(chosen, local_convs=1, ldf_squeeze=0.2),
    "both branches 1 conv + dynamic layer, r=0.2, 72 channels": replace(chosen, local_convs=1, ldf_squeeze=0.2, channels=72),
    "chosen with DDF's r=0.2": replace(chosen, ldf_squeeze=0.2),
    "chosen with DDF's r=0.2 and 4 RBs": replace(chosen, ldf_squeeze=0.2, residual_blocks=4),
    "chosen without residual blocks, r=0.75": replace(chosen, residual_blocks=0, ldf_squeeze=0.75),
    "chosen with a 3x3 fusion conv": replace(chosen, fusion="conv3x3"),
}


def main() -> None:
    print("| reading | params (M) | vs 14.70 M | GMACs | vs 346.74 G |")
    print("|---|---|---|---|---|")
    for name, config in ALTERNATIVES.items():
        r = count_complexity(config, 180, 270)
        print(f"| {name} | {r.params / 1e6:.3f} | {100 * (r.params / PAPER_PARAMS - 1):+.1f} % | "
              f"{r.macs / 1e9:.2f} | {100 * (r.macs / PAPER_MACS - 1):+.1f} % |")


if __name__ == "__main__":
    main()
