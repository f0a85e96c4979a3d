"""What a runner needs to know about an engine's input and output: tensor names, the batch, the profile's LR
sizes and the scale. Read from the sidecar ``gldfn-trt build`` writes, or, for an engine without one (built by
trtexec, or copied without its ``.json``), from the deserialized engine itself: that needs a GPU, and the scale
comes from the output shape TensorRT computes for the smallest input (or from an explicit ``--scale``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gldfn_model.inference.runner import RunnerError, Size
from gldfn_runtime.engine.sidecar import EngineSidecar

Shape = tuple[int, ...]


@dataclass(frozen=True)
class EngineIO:
    input_name: str
    output_name: str
    batch: int
    min_size: Size
    max_size: Size
    scale: int

    @classmethod
    def from_sidecar(cls, sidecar: EngineSidecar, path: Path, scale: int | None = None) -> EngineIO:
        """Read from the sidecar; ``scale``, when given, must be the one it records."""
        if scale is not None and scale != sidecar.scale:
            raise RunnerError(f"--scale {scale} does not match engine {path} (its sidecar), which says x{sidecar.scale}: "
                              f"drop --scale or pass --scale {sidecar.scale}")
        return cls(sidecar.inputs[0]["name"], sidecar.outputs[0]["name"], int(sidecar.profile["batch"]),
                   sidecar.min_size, sidecar.max_size, sidecar.scale)

    @classmethod
    def from_engine(cls, engine: Any, context: Any, trt: Any, path: Path, scale: int | None = None) -> EngineIO:
        """Read from a deserialized engine (TensorRT's ``ICudaEngine``) and an execution context of it; ``scale``,
        when given, must agree with what the shapes say."""
        inputs, outputs = [], []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
        if len(inputs) != 1 or len(outputs) != 1:
            raise RunnerError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; a GLDFN engine has one of each")
        lowest, _, highest = (tuple(shape) for shape in engine.get_tensor_profile_shape(inputs[0], 0))
        check_image_input(lowest, path)
        if not context.set_input_shape(inputs[0], lowest):
            raise RunnerError(f"{path} rejects its own smallest input shape {lowest}")
        found = scale_from_shapes(lowest, tuple(context.get_tensor_shape(outputs[0])), scale, path)
        return cls(inputs[0], outputs[0], lowest[0], (lowest[2], lowest[3]), (highest[2], highest[3]), found)


def check_image_input(shape: Shape, path: Path) -> None:
    """An N x 3 x H x W input, as GLDFN exports have."""
    if len(shape) != 4 or shape[1] != 3:
        raise RunnerError(f"{path} takes input of shape {shape}; a GLDFN engine takes N x 3 x H x W images")


def scale_from_shapes(input_shape: Shape, output_shape: Shape, requested: int | None, path: Path) -> int:
    """The upscaling factor an engine applies, from one input shape and the output shape TensorRT gives for it
    (NCHW both); ``requested`` (an explicit ``--scale``) must agree, and is used where the output shape is not
    known (-1). RunnerError when the shapes say no integer factor or disagree with ``requested``."""
    if len(output_shape) != 4 or min(output_shape[2:]) < 0:
        if requested is None:
            raise RunnerError(f"the output shape of {path} is not known before it runs ({output_shape}), and it has no "
                              "sidecar to say its scale: pass --scale")
        return requested
    height, width = output_shape[2] / input_shape[2], output_shape[3] / input_shape[3]
    if height != width or not height.is_integer() or output_shape[1] != input_shape[1]:
        raise RunnerError(f"{path} turns {input_shape} into {output_shape}: not an upscaling of one integer factor")
    if requested is not None and requested != int(height):
        raise RunnerError(f"--scale {requested} does not match {path}, which upscales x{int(height)} "
                          f"({input_shape} -> {output_shape}): drop --scale or pass --scale {int(height)}")
    return int(height)
