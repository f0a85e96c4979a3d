"""The packages' layering, read from the source with ``ast``: every import, also those inside functions.

gldfn_model is the base; gldfn_export, gldfn_runtime and gldfn_calibration sit on it. Inside gldfn_model the
subpackages form one order (GLDFN_MODEL_LAYERS), and so do gldfn_runtime's (RUNTIME_LAYERS): each may import the
ones before it, never one after it. The scripts in benchmarks/ and plugins/tests/ sit on top of everything; their
imports are scanned too, so that a moved module cannot leave them behind. docs/architecture.md explains the map.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"gldfn_model": "gldfn_model", "gldfn_export": "export", "gldfn_runtime": "runtime",
                "gldfn_calibration": "calibration"}
# Which of the project's packages each package may import (besides itself).
ALLOWED_PACKAGES = {
    "gldfn_model": set(),
    "gldfn_export": {"gldfn_model"},
    "gldfn_runtime": {"gldfn_model"},
    "gldfn_calibration": {"gldfn_model", "gldfn_export", "gldfn_runtime"},
}
# gldfn_model's subpackages, lowest first: each may import those before it.
GLDFN_MODEL_LAYERS = ("common", "ops", "network", "peers", "data", "inference", "evaluation", "training", "cli")
# gldfn_runtime's subpackages, lowest first: TensorRT itself, the plugin library, engines, the runners that run
# them, upscaling with any runner, serving with Triton, batch jobs on Ray, benchmarks, and the command lines.
RUNTIME_LAYERS = ("tensorrt", "plugin", "engine", "runners", "upscale", "serve", "batch", "bench", "cli")
LAYERS = {"gldfn_model": GLDFN_MODEL_LAYERS, "gldfn_runtime": RUNTIME_LAYERS}
# Script folders outside the packages: they may import any package, and must import only modules that exist.
SCRIPT_DIRS = ("benchmarks", "plugins/tests")

@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (for ``from M import name``: M, or M.name where that is a module)
    names: tuple[str, ...]  # the names taken by ``from M import ...``
    line: int

    def where(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


@cache
def _module_files() -> dict[str, Path]:
    files = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            files[".".join((package, *parts))] = path
    return files


def _is_package(module: str) -> bool:
    return _module_files()[module].name == "__init__.py"


def _resolve_relative(module: str, level: int, name: str | None) -> str:
    base = module.split(".")
    base = base if _is_package(module) else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _script_files() -> dict[str, Path]:
    return {f"{folder}/{path.name}": path for folder in SCRIPT_DIRS for path in sorted((REPO / folder).glob("*.py"))}


@cache
def project_imports(with_scripts: bool = False) -> tuple[Import, ...]:
    modules = _module_files()
    found = []
    sources = {**modules, **_script_files()} if with_scripts else modules
    for module, path in sources.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found += [Import(module, alias.name, (), node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve_relative(module, node.level, node.module) if node.level else node.module or ""
                names = tuple(alias.name for alias in node.names)
                # ``from gldfn_model import data`` imports the subpackage gldfn_model.data.
                submodules = [f"{source}.{name}" for name in names if f"{source}.{name}" in modules]
                found += [Import(module, target, names, node.lineno) for target in submodules or [source]]
    return tuple(i for i in found if i.target.split(".")[0] in PACKAGE_DIRS)


def _package(module: str) -> str:
    return module.split(".")[0]


def _layer(module: str) -> int | None:
    """The index of a module's subpackage in its package's LAYERS; None for the package root or a package
    without layers."""
    parts = module.split(".")
    layers = LAYERS.get(parts[0])
    if layers is None or len(parts) < 2 or not _is_package(".".join(parts[:2])):
        return None
    return layers.index(parts[1])


def _upward_imports() -> set[tuple[str, str]]:
    edges = set()
    for imp in project_imports():
        importer, imported = _package(imp.module), _package(imp.target)
        if importer != imported and imported not in ALLOWED_PACKAGES[importer]:
            edges.add((imp.module, imp.target))
        elif importer == imported:
            low, high = _layer(imp.module), _layer(imp.target)
            if low is not None and high is not None and high > low:
                edges.add((imp.module, imp.target))
    return edges


def test_every_subpackage_has_a_layer() -> None:
    for package, layers in LAYERS.items():
        folder = REPO / PACKAGE_DIRS[package]
        subpackages = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
        assert subpackages == set(layers), f"add the new subpackage of {package} to its LAYERS at its level"


def test_runtime_modules_live_in_rooms() -> None:
    loose = sorted(p.name for p in (REPO / "runtime").glob("*.py") if p.name != "__init__.py")
    assert not loose, f"put these runtime modules into the subpackage of their tier ({RUNTIME_LAYERS}): {loose}"


def test_every_project_import_names_a_module_that_exists() -> None:
    modules = _module_files()
    missing = sorted(i.where() for i in project_imports(with_scripts=True)
                     if i.target not in modules)
    assert not missing, "imports of modules that do not exist (moved or renamed?):\n" + "\n".join(missing)


def test_the_walk_sees_imports_inside_functions() -> None:
    # cli/evaluate.py imports gldfn_model.evaluation.evaluate inside the command function only.
    lazy = [i for i in project_imports() if i.module == "gldfn_model.cli.evaluate"
            and i.target == "gldfn_model.evaluation.evaluate"]
    assert lazy, "the import walk missed an import made inside a function"


def test_no_upward_imports() -> None:
    upward = _upward_imports()
    lines = sorted(i.where() for i in project_imports() if (i.module, i.target) in upward)
    assert not lines, "imports against the layering (docs/architecture.md):\n" + "\n".join(lines)


def test_no_private_names_imported_across_modules() -> None:
    private = sorted(f"{i.where()}: {name}" for i in project_imports() for name in i.names
                     if name.startswith("_") and not name.startswith("__") and i.target != i.module)
    assert not private, "make these public (no leading underscore) or keep them in their module:\n" + "\n".join(private)
