#!/usr/bin/env bash
# From a fresh clone to an upscaled image, in one command:
#   install (a virtual environment with torch and the project) -> export the shipped x4 model to ONNX -> build the
#   TensorRT plugin -> build an FP16 engine on the CPU with TensorRT-RTX -> upscale a sample image, through that
#   engine where a GPU can run it, else through ONNX Runtime.
# Usage: bash quickstart.sh [IMAGE] (default: a synthetic test card). Everything it writes goes to ./quickstart/
# (or $GLDFN_QUICKSTART_OUT) and the virtual environment .venv/ (or $GLDFN_VENV); running it again reuses what is
# there. The tests are the other command: bash .ci/run.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${GLDFN_QUICKSTART_OUT:-quickstart}
VENV=${GLDFN_VENV:-.venv}
TRT_HEADERS_TAG=v11.1  # TensorRT-RTX 1.x loads plugins through TensorRT 11's interfaces
step() { printf '\n== %s\n' "$*"; }

step "install into $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -e ".[cpu,plot,test,rtx]"
mkdir -p "$OUT"

step "export the shipped x4 model to ONNX"
ONNX=$OUT/gldfn_tiny_x4_fp32.onnx
[ -f "$ONNX" ] || gldfn-export --scale 4 -o "$ONNX"

step "build the TensorRT plugin"
PLUGIN_ARGS=()
if ! command -v nvcc >/dev/null || ! command -v cmake >/dev/null; then
  echo "no nvcc or cmake on PATH: the engine is built from the ONNX function bodies instead (--no-plugin)"
  PLUGIN_ARGS=(--no-plugin)
else
  if ! python -c "import sys; from gldfn_runtime.plugin.build import find_tensorrt_headers as f; sys.exit(f(11) is None)"; then
    HEADERS=$OUT/tensorrt-headers
    if [ ! -f "$HEADERS/include/NvInferRuntime.h" ]; then
      echo "no TensorRT 11 headers found: fetching include/ of github.com/NVIDIA/TensorRT at $TRT_HEADERS_TAG"
      rm -rf "$HEADERS"
      git clone --quiet --depth 1 --branch "$TRT_HEADERS_TAG" --filter=blob:none --sparse \
        https://github.com/NVIDIA/TensorRT "$HEADERS"
      git -C "$HEADERS" sparse-checkout set include
    fi
    TENSORRT_ROOT=$(cd "$HEADERS" && pwd)
    export TENSORRT_ROOT
  fi
  gldfn-trt plugin build
fi

step "build an FP16 engine on the CPU (TensorRT-RTX, ahead of time for SM80-SM121)"
ENGINE=$OUT/gldfn_tiny_x4.rtx-fp16.engine
gldfn-trt build "$ONNX" --precision fp16 --backend tensorrt-rtx "${PLUGIN_ARGS[@]}" -o "$ENGINE"
gldfn-trt inspect "$ENGINE"

step "upscale a sample image"
SAMPLE=${1:-$OUT/test_card.png}
if [ -z "${1:-}" ] && [ ! -f "$SAMPLE" ]; then
  python - "$SAMPLE" <<'EOF'
import sys

import numpy as np

from gldfn_model.data.image_io import write_image
from gldfn_model.data.reference_inputs import synthetic_card

card = synthetic_card(96, 128, 1)[0].transpose(1, 2, 0)
write_image(sys.argv[1], np.round(card * 255).astype(np.uint8))
EOF
fi
RESULT=$OUT/$(basename "${SAMPLE%.*}")_x4.png
if python -c "import sys; from gldfn_runtime.tensorrt.backend import current_gpu; sys.exit(current_gpu()[0] is None)" 2>/dev/null \
   && gldfn-trt run "$ENGINE" "$SAMPLE" -o "$RESULT" --overwrite; then
  echo "upscaled through the TensorRT-RTX engine"
else
  echo "no GPU that runs the engine here: upscaling through ONNX Runtime on the CPU"
  gldfn upscale "$SAMPLE" --onnx "$ONNX" -o "$RESULT" --overwrite
fi
echo "done: $RESULT"
