"""A model across the test degradations in one table: for each image set and each suite row (Gaussian8 clean
and with AWGN 15 / 30, anisotropic, spatially varying with low and high noise) the mean PSNR / SSIM of bicubic
under both conventions (``dcls``, and ``ikc`` as the published Bicubic rows use) and of the model under
``dcls``, all on the same degraded images."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gldfn_model.evaluation.evaluate import RestoreFn, bicubic_restore, degrade_cases, evaluate_cases

SUITE_SETS = ("Set5", "Set14", "BSD100")


@dataclass(frozen=True)
class SuiteRow:
    """One degradation of the suite, as `gldfn eval` options: --setting, --noise (8-bit levels), --sv-noise."""

    name: str
    title: str
    setting: str
    noise: float = 0.0
    sv_noise: str = "low"


SUITE_ROWS = (
    SuiteRow("gaussian8", "Gaussian8", "gaussian8"),
    SuiteRow("gaussian8+n15", "Gaussian8 + AWGN 15", "gaussian8", noise=15.0),
    SuiteRow("gaussian8+n30", "Gaussian8 + AWGN 30", "gaussian8", noise=30.0),
    SuiteRow("aniso", "anisotropic", "aniso"),
    SuiteRow("sv-low", "spatially varying, noise 0-5", "sv", sv_noise="low"),
    SuiteRow("sv-high", "spatially varying, noise 5-10", "sv", sv_noise="high"),
)
# Which (method, convention) pairs each row scores.
SCORES = (("bicubic", "dcls"), ("bicubic", "ikc"), ("model", "dcls"))


@dataclass
class SuiteResult:
    set_name: str
    row: str
    images: int
    scores: dict[str, tuple[float, float]]  # "bicubic/dcls" -> (mean PSNR, mean SSIM)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_rows(names: Iterable[str]) -> list[SuiteRow]:
    by_name = {row.name: row for row in SUITE_ROWS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown suite row(s) {unknown}; the rows are {', '.join(by_name)}")
    return [by_name[n] for n in names]


def evaluate_suite(sets: dict[str, Path], scale: int, restore: RestoreFn, rows: Iterable[SuiteRow] = SUITE_ROWS,
                   seed: int = 0, on_result: Callable[[SuiteResult], None] | None = None) -> list[SuiteResult]:
    """Score bicubic and ``restore`` on every (set, row); the images are degraded once per row, one at a time."""
    methods = {"bicubic": bicubic_restore(scale), "model": restore}
    results = []
    for set_name, folder in sets.items():
        for row in rows:
            per_image: dict[str, list[tuple[float, float]]] = {f"{m}/{c}": [] for m, c in SCORES}
            for case in degrade_cases(folder, row.setting, scale, seed, row.noise / 255.0, row.sv_noise):
                for method, convention in SCORES:
                    scored = evaluate_cases(iter([case]), scale, methods[method], convention, row.setting).per_image[0]
                    per_image[f"{method}/{convention}"].append((scored.psnr, scored.ssim))
            means = {key: (float(np.mean([p for p, _ in v])), float(np.mean([s for _, s in v])))
                     for key, v in per_image.items()}
            result = SuiteResult(set_name, row.name, len(per_image["model/dcls"]), means)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def format_suite(results: list[SuiteResult], title: str, markdown: bool = False) -> str:
    """The table: one line per (set, row); PSNR dB / SSIM per (method, convention)."""
    titles = {row.name: row.title for row in SUITE_ROWS}
    columns = [f"{m} ({c})" for m, c in SCORES]
    cells = [[r.set_name, titles[r.row], str(r.images), *(f"{p:.2f} / {s:.4f}" for p, s in r.scores.values())]
             for r in results]
    head = ["set", "degradation", "images", *columns]
    if markdown:
        lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)] + [f"| {' | '.join(c)} |" for c in cells]
        return f"{title}\n\n" + "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *cells)]

    def line(row: list[str]) -> str:  # text left, figures right
        return "  ".join(x.rjust(w) if i >= 2 else x.ljust(w) for i, (x, w) in enumerate(zip(row, widths)))
    return "\n".join([title, line(head), *(line(c) for c in cells)])
