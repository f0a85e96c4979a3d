"""``gldfn info``: parameters and multiply-accumulates of a config, beside the paper's tables."""
from __future__ import annotations

import json
from enum import Enum

import typer

from gldfn_model.cli.options import JSON, ConfigName, scale_option
from gldfn_model.common.sizes import parse_size
from gldfn_model.network.complexity import TABLE_I_PARAMS, TABLE_IV, Complexity, count_complexity
from gldfn_model.network.config import ABLATION_DESCRIPTIONS, ABLATION_VARIANTS, get_config
from gldfn_model.peers import MODEL_NAMES

Network = Enum("Network", {name: name for name in MODEL_NAMES}, type=str)


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
    typer.echo(f"  (hook counter: {data['counter_macs'] / 1e9:.2f} G in all, {data['module_macs'] / 1e9:.2f} G in "
               "conv/linear modules, what torchsummaryX would count; `--model dcls|danv1|danv2` for the others)")


def _print_table_iv_row(data: dict) -> None:
    """One network's counts beside its Table IV row (``TableIVRow.to_dict``)."""
    paper = data["table_iv"]
    h, w = data["lr_size"]
    typer.echo(f"{paper['name']}, x{data['scale']}, LR {h}x{w} (random weights; {data['source']})")
    typer.echo(f"  parameters: {data['params']:,} ({data['params'] / 1e6:.3f} M)   Table IV {paper['params_m']:.2f} M "
               f"({paper['params_deviation']:+.2%})")
    typer.echo(f"  MACs, conv/linear modules (torchsummaryX, the authors' counter): {data['module_macs'] / 1e9:.2f} G")
    for adjustment in paper["adjustments"]:
        typer.echo(f"    {adjustment['macs'] / 1e9:+.2f} G: {adjustment['reason']}")
    typer.echo(f"    = {paper['authors_convention_macs'] / 1e9:.2f} G   Table IV {paper['gmacs']:.2f} G "
               f"({paper['macs_deviation']:+.2%})")
    other = ", ".join(f"{name} {macs / 1e9:.3f}" for name, macs in data["functional_macs"].items()) or "none"
    typer.echo(f"  MACs, every rule: {data['macs'] / 1e9:.2f} G ({paper['all_rules_deviation']:+.2%} against "
               f"Table IV); beyond the modules, in G: {other}")
    for note in paper["notes"]:
        typer.echo(f"  note: {note}")
    typer.echo("\n  component                        params   GMACs (modules)  GMACs (other)")
    for name, values in data["components"].items():
        modules = values.get("conv/linear modules", 0)
        other_macs = sum(v for k, v in values.items() if k not in ("params", "conv/linear modules"))
        typer.echo(f"  {name:28s} {values.get('params', 0):>10,} {modules / 1e9:>16.3f} {other_macs / 1e9:>14.3f}")


def register(app: typer.Typer) -> None:
    @app.command()
    def info(
        network: Network = typer.Option(Network.gldfn, "--model", help="network: Table IV's four"),
        config_choice: ConfigName = typer.Option(ConfigName.paper, "--config",
                                                 help="GLDFN's named config (paper: the one Table IV counts)"),
        scale: int = scale_option("upscaling factor", default=4),
        lr_size: str = typer.Option("180x270", help="LR input size HEIGHTxWIDTH for the MAC count"),
        ablation: bool = typer.Option(False, "--ablation", help="print Table I's variants A-D side by side"),
        as_json: bool = JSON,
    ) -> None:
        """Parameters and multiply-accumulates with a per-component breakdown: GLDFN analytically (checked against
        the hook counter), the peers with the hook counter (gldfn_model.network.op_count), each beside Table IV."""
        from gldfn_model.peers.table_iv import table_iv_row

        size = parse_size(lr_size)
        model, config = network.value, config_choice.value
        if model != "gldfn":
            if ablation:
                raise typer.BadParameter("--ablation lists GLDFN's Table I variants; leave out --model")
            try:
                row = table_iv_row(model, scale, size).to_dict()
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
            if as_json:
                typer.echo(json.dumps(row, indent=2))
            else:
                _print_table_iv_row(row)
            return
        if ablation:
            rows = {}
            for variant in ABLATION_VARIANTS:
                cfg = get_config(config, scale, variant)
                rows[variant] = complexity_dict(config, scale, size, count_complexity(cfg, *size))
        else:
            data = complexity_dict(config, scale, size, count_complexity(get_config(config, scale), *size))
            counted = table_iv_row("gldfn", scale, size, config).to_dict()
            data.update(module_macs=counted["module_macs"], functional_macs=counted["functional_macs"],
                        counter_macs=counted["macs"], table_iv=counted["table_iv"])
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
