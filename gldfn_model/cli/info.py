"""``gldfn info``: parameters and multiply-accumulates of a config, beside the paper's tables."""
from __future__ import annotations

import json

import typer

from gldfn_model.common.sizes import parse_size
from gldfn_model.network.complexity import TABLE_I_PARAMS, TABLE_IV, Complexity, count_complexity
from gldfn_model.network.config import ABLATION_DESCRIPTIONS, ABLATION_VARIANTS, get_config


def complexity_dict(config_name: str, scale: int, lr_size: tuple[int, int], result: Complexity) -> dict:
    return {
        "config": config_name,
        "scale": scale,
        "lr_size": list(lr_size),
        "params": result.params,
        "macs": result.macs,
        "flops": result.flops,
        "convention": "macs = multiply-accumulates (the paper's 'FLOPs'); flops = 2 x macs",
        "components": {name: {"params": p, "macs": m} for name, (p, m) in result.components.items()},
    }


def _print_single(data: dict) -> None:
    h, w = data["lr_size"]
    typer.echo(f"GLDFN config '{data['config']}', x{data['scale']}, LR {h}x{w}")
    typer.echo(f"  parameters: {data['params']:,} ({data['params'] / 1e6:.3f} M)")
    typer.echo(f"  multiply-accumulates: {data['macs']:,} ({data['macs'] / 1e9:.2f} G; {data['flops'] / 1e9:.2f} G FLOPs counting mul and add apart)")
    typer.echo("\n  component              params        GMACs")
    for name, values in data["components"].items():
        typer.echo(f"  {name:20s} {values['params']:>10,} {values['macs'] / 1e9:>12.3f}")
    typer.echo("\n  Table IV (x4, LR 180x270; the paper's FLOPs are MACs)")
    typer.echo("  method      params (M)   GMACs")
    for method, (params_m, gmacs) in TABLE_IV.items():
        typer.echo(f"  {method:10s} {params_m:>10.2f} {gmacs:>8.2f}")
    typer.echo(f"  {'ours':10s} {data['params'] / 1e6:>10.2f} {data['macs'] / 1e9:>8.2f}   (this config at this size)")


def register(app: typer.Typer) -> None:
    @app.command()
    def info(
        config: str = typer.Option("paper", help="named config: paper, small or tiny"),
        scale: int = typer.Option(4, help="upscaling factor: 2, 3 or 4"),
        lr_size: str = typer.Option("180x270", help="LR input size HEIGHTxWIDTH for the MAC count"),
        ablation: bool = typer.Option(False, "--ablation", help="print Table I's variants A-D side by side"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Parameters and multiply-accumulates, analytically, with a per-component breakdown."""
        size = parse_size(lr_size)
        if ablation:
            rows = {}
            for variant in ABLATION_VARIANTS:
                cfg = get_config(config, scale, variant)
                rows[variant] = complexity_dict(config, scale, size, count_complexity(cfg, *size))
        else:
            data = complexity_dict(config, scale, size, count_complexity(get_config(config, scale), *size))
        if ablation:
            if as_json:
                typer.echo(json.dumps({v: {**d, "paper_params": int(TABLE_I_PARAMS[v] * 1e6)} for v, d in rows.items()}, indent=2))
                return
            typer.echo(f"Table I variants of config '{config}', x{scale}, LR {size[0]}x{size[1]}")
            typer.echo("  variant  description                        params (M)  paper (M)     GMACs")
            for variant, d in rows.items():
                typer.echo(f"  {variant:7s}  {ABLATION_DESCRIPTIONS[variant]:33s} {d['params'] / 1e6:>10.3f} {TABLE_I_PARAMS[variant]:>10.3f} {d['macs'] / 1e9:>9.2f}")
            typer.echo("  (the paper rebalanced its variants to one budget; ours swap each dynamic layer for a plain 3x3 conv)")
            return
        if as_json:
            typer.echo(json.dumps(data, indent=2))
        else:
            _print_single(data)
