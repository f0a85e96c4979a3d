"""What an INT8 file is laid out for (kept free of heavy imports so that ``gldfn-calibrate --help`` is quick).

- ``tensorrt``: what TensorRT builds INT8 engines from: symmetric INT8 activations (zero point 0), symmetric
  per-channel INT8 weights, float bias; only the quantized convolutions read 8-bit inputs.
- ``onnxruntime``: what ONNX Runtime's CPU kernels fuse into QLinearConv: asymmetric UINT8 activations,
  symmetric per-channel INT8 weights, INT32 bias, and each quantized convolution's output read by its own Q node
  only (float consumers read its dequantized value). TensorRT cannot build this layout (UINT8 activations, INT32
  bias DequantizeLinear).
"""
from __future__ import annotations

from enum import Enum


class Int8Target(str, Enum):
    tensorrt = "tensorrt"
    onnxruntime = "onnxruntime"

    @property
    def activations(self) -> str:
        return "int8 symmetric, per tensor" if self is Int8Target.tensorrt else "uint8 asymmetric, per tensor"

    @property
    def bias(self) -> str:
        return "float" if self is Int8Target.tensorrt else "int32 (input scale x weight scale)"


WEIGHTS = "int8 symmetric, per output channel"
