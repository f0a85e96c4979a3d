# shellcheck shell=bash disable=SC2154  # $repo: the sourcing script's
# Sourced by the GPU scripts: the project's packages importable from the working tree without installing it
# (pyproject.toml's package-dir maps gldfn_runtime to runtime/ and so on: each mapped name becomes a link in a
# temporary folder), plus the pure-Python modules staged in .gpu_stage/site (GLDFN_GPU_STAGE: another folder; pypng, which a GPU machine without
# network lacks). Needs $repo and python3; sets PYTHONPATH and source_shim (a temporary folder the caller removes).
source_shim=$(mktemp -d "${TMPDIR:-/tmp}/gldfn-source.XXXXXX")
python3 - "$repo" "$source_shim" <<'PY' || return 1
import sys, tomllib
from pathlib import Path
repo, shim = Path(sys.argv[1]), Path(sys.argv[2])
package_dir = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
for name, folder in package_dir.items():
    if name != folder:
        (shim / name).symlink_to(repo / folder)
PY
PYTHONPATH="$source_shim:$repo${PYTHONPATH:+:$PYTHONPATH}"
staged_site=${GLDFN_GPU_STAGE:-$repo/.gpu_stage}/site
if [[ -d $staged_site ]]; then PYTHONPATH="$PYTHONPATH:$staged_site"; fi
export PYTHONPATH
