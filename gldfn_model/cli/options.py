"""The options every command line of the project spells, defaults and explains the same way (docs/cli.md has the
table), and the rules for what a command infers instead of asking.

Use them as parameter defaults in a Typer command::

    def command(
        inputs: list[Path] | None = inputs_argument("image files and/or folders"),
        input_options: list[Path] | None = input_option("image file or folder"),
        output: str = output_option("output folder"),
        scale: int | None = scale_option(),
        seed: int = SEED,
    ) -> None:
        files = merge_inputs(inputs, input_options)
        scale = agree_scale(scale, found, "model.onnx (its metadata)")

- Main inputs: positional arguments and/or repeatable ``-i/--input``, merged in that order (:func:`merge_inputs`).
- What a command writes: ``-o/--output`` (an old ``--out`` stays a hidden alias: gldfn_model.common.cli_aliases).
- ``-s/--scale`` is optional wherever the model says its scale; a different one is an error (:func:`agree_scale`).
- A value implied by the files given (the backend by ``--onnx``, the method by ``--checkpoint``) is inferred; an
  explicit one that contradicts them is an error naming both (:func:`implied_choice`).
- Options with a fixed set of values are Enums, so ``--help`` lists the choices.

Torch-free: ``gldfn-export --help`` and ``gldfn-trt --help`` import this module.
"""
from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any

import typer

from gldfn_model.common.sizes import parse_size
from gldfn_model.data.setting_names import SETTINGS, SV_NOISE_RANGES_255
from gldfn_model.network.config import SUPPORTED_SCALES
from gldfn_model.network.registry import DEFAULT_SCALE

AUTO = "auto"
DISTRIBUTION = "gldfn-trt"  # the installed distribution all four commands come from


class ConfigName(str, Enum):
    """gldfn_model.network.config.NAMED_CONFIGS."""

    paper = "paper"
    small = "small"
    tiny = "tiny"


Setting = Enum("Setting", {name: name for name in SETTINGS}, type=str)
Setting.__doc__ = "gldfn_model.data.setting_names.SETTINGS"
SvNoise = Enum("SvNoise", {name: name for name in SV_NOISE_RANGES_255}, type=str)
SvNoise.__doc__ = "gldfn_model.data.setting_names.SV_NOISE_RANGES_255"


def value_of(choice: Enum | None) -> Any:
    """An Enum option's value (None stays None)."""
    return None if choice is None else choice.value


def distribution_version() -> str:
    """The installed gldfn-trt's version (package metadata); "unknown" when the package is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def version_option(program: str) -> Any:
    """``--version``: print ``PROGRAM (gldfn-trt VERSION)`` and exit 0, before anything else is read. Declare it on
    the app's callback (or the command of a one-command app) as ``version: bool = version_option("gldfn")``."""

    def show(value: bool) -> None:
        if value:
            typer.echo(f"{program} ({DISTRIBUTION} {distribution_version()})")
            raise typer.Exit()

    return typer.Option(False, "--version", callback=show, is_eager=True, help="print the version and exit")


# ---------------------------------------------------------------- inputs and outputs

def inputs_argument(help: str, metavar: str = "INPUT") -> Any:
    """Positional main inputs (optional: ``-i/--input`` may give them instead); merge with :func:`merge_inputs`."""
    return typer.Argument(None, help=f"{help} (or -i)", metavar=metavar, show_default=False)


def input_option(help: str, several: bool = True) -> Any:
    """``-i/--input``: the same main inputs as the positional arguments, for scripts that name them; repeatable
    where the command takes ``several`` (declare it as a list in any case, and merge with :func:`merge_inputs`)."""
    return typer.Option(None, "-i", "--input", help=f"{help}; repeatable" if several else help, show_default=False)


def merge_inputs(positional: Sequence[Path] | Path | None, options: Sequence[Path] | None, *, what: str = "input",
                 at_most: int | None = None) -> list[Path]:
    """The positional inputs (a list, or one path where the command takes one), then the ``-i`` ones;
    typer.BadParameter when there are none or more than ``at_most``."""
    first = [positional] if isinstance(positional, Path) else list(positional or ())
    merged = [*first, *(options or ())]
    if not merged:
        raise typer.BadParameter(f"no {what} given: name it as an argument or with -i/--input")
    if at_most is not None and len(merged) > at_most:
        names = ", ".join(str(p) for p in merged)
        raise typer.BadParameter(f"this command takes {'one' if at_most == 1 else at_most} {what}, got "
                                 f"{len(merged)}: {names}")
    return merged


def output_option(help: str, required: bool = True) -> Any:
    """``-o/--output``: what the command writes (a file or a folder, as ``help`` says)."""
    return typer.Option(... if required else None, "-o", "--output", help=help, show_default=False)


# ---------------------------------------------------------------- the model and its scale

def scale_option(help: str = "upscaling factor (default: the model's, else 4)", default: int | None = None) -> Any:
    """``-s/--scale`` (2, 3 or 4). Leave ``default`` None where a model can say its scale, and settle the value
    with :func:`agree_scale`."""
    return typer.Option(default, "-s", "--scale", min=min(SUPPORTED_SCALES), max=max(SUPPORTED_SCALES), help=help)


def agree(option: str, requested: Any, found: Any, source: str, default: Any = None, shown: str = "{}") -> Any:
    """The value of ``option`` that ``source`` says (``found``, None: it says none), which an explicit
    ``requested`` must equal, else ``requested``, else ``default``; typer.BadParameter naming both values and
    ``source`` (a file or model, e.g. ``"m.onnx (its gldfn.scale metadata)"``). ``shown`` formats a value."""
    if found is None:
        return requested if requested is not None else default
    if requested is not None and requested != found:
        raise typer.BadParameter(f"{requested} does not match {source}, which says {shown.format(found)}: "
                                 f"drop {option} or pass {option} {found}", param_hint=f"'{option}'")
    return found


def agree_scale(requested: int | None, found: int | None, source: str, default: int | None = DEFAULT_SCALE) -> int | None:
    """:func:`agree` for ``-s/--scale``."""
    return agree("--scale", requested, found, source, default, shown="x{}")


def implied_choice(option: str, requested: str, implied: Sequence[tuple[str, str]], default: str) -> str:
    """The value of ``option`` (e.g. ``--backend``) given the files the user named. ``implied``: (what was given,
    e.g. ``"--onnx m.onnx"``, the value it implies). ``requested`` :data:`AUTO` takes the one value implied, else
    ``default``; an explicit value must agree with every implication. typer.BadParameter naming both sides."""
    if requested == AUTO:
        first_given, first_value = implied[0] if implied else ("", default)
        for given, value in implied:
            if value != first_value:
                raise typer.BadParameter(f"{first_given} runs with {option} {first_value} and {given} with "
                                         f"{option} {value}: pass one of them")
        return first_value
    for given, value in implied:
        if value != requested:
            name = given.split()[0]
            raise typer.BadParameter(f"{requested} contradicts {given}, which runs with {option} {value}: "
                                     f"drop {option} (it follows from {name}) or drop {name}", param_hint=f"'{option}'")
    return requested


def config_option(help: str = "named config (default: the checkpoint's, else tiny: the shipped weights')",
                  default: ConfigName | None = None) -> Any:
    """``--config paper|small|tiny``."""
    return typer.Option(default, "--config", help=help)


def checkpoint_option(help: str = "a gldfn checkpoint (tensors and plain data only); it sets the scale") -> Any:
    """``--checkpoint PATH``: weights to run with PyTorch."""
    return typer.Option(None, "--checkpoint", help=help, show_default=False)


def onnx_option(help: str = "an exported ONNX file (gldfn-export); implies --backend onnxruntime and sets the scale") -> Any:
    """``--onnx PATH``: a model to run with ONNX Runtime."""
    return typer.Option(None, "--onnx", help=help, show_default=False)


# Every command that writes files: without it an output that exists (an input included) is refused, before any work,
# and a file that appears while the output is written is kept (gldfn_model.common.atomic).
OVERWRITE = typer.Option(False, "--overwrite", help="replace output files that exist, inputs included")

RANDOM_WEIGHTS = typer.Option(False, "--random-weights",
                              help="an untrained network where no weights are shipped (timing and testing only)")

# ---------------------------------------------------------------- running

THREADS = typer.Option(None, "-j", "--threads", min=1, show_default=False,
                       help="CPU threads for PyTorch / ONNX Runtime (default: the CPUs this process may use)")
PROVIDERS = typer.Option("cpu", "--providers",
                         help="ONNX Runtime execution providers, comma-separated: cpu, cuda or full provider names")
GPU_HELP = "the CUDA GPU to run on: its index among the GPUs CUDA sees (CUDA_VISIBLE_DEVICES)"


def device_option(default: int | None = 0, help: str = GPU_HELP) -> Any:
    """``-g/--device N``: the GPU a command runs on, wherever one runs (gldfn-trt run/bench/compare, gldfn upscale
    with an engine; gldfn bench spells its own, which also takes cpu)."""
    return typer.Option(default, "-g", "--device", min=0, help=help, show_default=default is not None)


SEED = typer.Option(0, "--seed", help="seed of every random choice (degradations, noise, patches, random weights)")
JSON = typer.Option(False, "--json", help="print one JSON object")

# ---------------------------------------------------------------- benchmarks

DEFAULT_SIZES = "180x270"  # Table IV's LR size
SIZES = typer.Option(DEFAULT_SIZES, "--sizes", help="LR sizes HEIGHTxWIDTH, comma-separated (Table IV: 180x270)")
ITERS = typer.Option(None, "--iters", help="timed iterations per size (default: 100 on a GPU, 20 on the CPU)",
                     min=1, show_default=False)
WARMUP = typer.Option(None, "--warmup", help="untimed iterations first (default: 10 on a GPU, 3 on the CPU)",
                      min=0, show_default=False)
MARKDOWN = typer.Option(False, "--markdown", help="print Markdown tables")
PLOT = typer.Option(None, "--plot", help="write a PNG of latency against image size (or GMACs, for several networks)",
                    show_default=False)
GPU_COUNTS, CPU_COUNTS = (100, 10), (20, 3)


def bench_counts(iters: int | None, warmup: int | None, on_gpu: bool) -> tuple[int, int]:
    """(timed, warm-up) iterations: the ones given, else the default for where the benchmark runs."""
    default_iters, default_warmup = GPU_COUNTS if on_gpu else CPU_COUNTS
    return (default_iters if iters is None else iters), (default_warmup if warmup is None else warmup)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``--sizes``: comma-separated HEIGHTxWIDTH."""
    sizes = [parse_size(part.strip()) for part in text.split(",") if part.strip()]
    if not sizes:
        raise typer.BadParameter(f"--sizes {text!r}: give LR sizes HEIGHTxWIDTH, comma-separated")
    return sizes
