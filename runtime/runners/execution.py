"""One TensorRT execution context that any thread may drive: ``ContextExecutor``.

- Every entry point takes the executor's lock (an execution context holds one set of shapes and addresses) and
  makes the executor's device current first (CUDA's current device is per thread, and another runner may have
  changed it).
- All work on the context goes to the executor's own stream; work that comes from another stream (a caller's
  CUDA tensors) is ordered with it by events: the executor's stream waits for the caller's, and the caller's
  waits for the result.
- Events and buffers are created once and freed in ``close()``. Host data goes through page-locked (pinned) staging
  buffers, so that its copies are true asynchronous DMA on the stream rather than staged by the driver.

CUDA calls go through NVIDIA's ``cuda-python`` runtime bindings (``cuda.bindings.runtime``) or an object with the
same functions.
"""
from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from gldfn_model.inference.runner import RunnerError


def load_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as error:
        raise RunnerError("the TensorRT runner needs NVIDIA's cuda-python: pip install 'gldfn-trt[rtx]' "
                          "(see the README for the CUDA 12 / 13 extras)") from error
    return cudart


def native_handle(handle: Any) -> int:
    """The address of a cuda-python handle (``cudaStream_t``, ``cudaEvent_t``), an int as it is (what TensorRT
    takes). ``int(handle)`` is deprecated since cuda-bindings 12.9.1 / 13.0, which bring ``get_cuda_native_handle``."""
    if isinstance(handle, int):
        return handle
    from cuda.bindings.utils import get_cuda_native_handle

    return int(get_cuda_native_handle(handle))


class ContextExecutor:
    """``context`` (a TensorRT ``IExecutionContext``) with its input and output tensor names, on CUDA device
    ``device``. ``recent_messages(n)`` gives the TensorRT logger's last n messages, quoted when a run fails."""

    def __init__(self, context: Any, input_name: str, output_name: str, output_dtype: np.dtype, device: int,
                 *, cudart: Any = None, recent_messages: Callable[[int], list[str]] | None = None) -> None:
        self._cudart = cudart if cudart is not None else load_cudart()
        self._context = context
        self.input_name = input_name
        self.output_name = output_name
        self.output_dtype = np.dtype(output_dtype)
        self.device = device
        self._recent_messages = recent_messages or (lambda count: [])
        self._lock = threading.RLock()  # re-entrant: a timed step calls infer while the timer holds it
        self._buffers: dict[str, tuple[int, int]] = {}
        self._pinned: dict[str, tuple[int, int]] = {}  # page-locked host staging buffers: name -> (pointer, bytes)
        self._timing_events: tuple[Any, Any] | None = None
        self._closed = False
        rt = self._cudart
        self._set_device()
        self._stream = self._check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")
        # Only for ordering with other streams: no timing, cheaper to record.
        self._caller_ready, self._done = (self._new_event(rt.cudaEventDisableTiming) for _ in range(2))

    # --- CUDA plumbing ------------------------------------------------------------------------------------------

    def _check(self, result: Any, what: str) -> Any:
        """Unpack a cuda-python ``(error, *values)`` tuple, raising on an error."""
        rt = self._cudart
        error, *values = result if isinstance(result, tuple) else (result,)
        if error != rt.cudaError_t.cudaSuccess:
            raise RunnerError(f"CUDA error in {what} on GPU {self.device}: {rt.cudaGetErrorString(error)[1].decode()}")
        return values[0] if len(values) == 1 else values

    def _set_device(self) -> None:
        self._check(self._cudart.cudaSetDevice(self.device), "cudaSetDevice")

    def _new_event(self, flags: Any) -> Any:
        return self._check(self._cudart.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags")

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Hold the lock with the device current: every use of the context, its stream or its buffers."""
        with self._lock:
            if self._closed:
                raise RunnerError("this TensorRT runner is closed")
            self._set_device()
            yield

    @property
    def stream(self) -> int:
        return native_handle(self._stream)

    def _buffer(self, name: str, nbytes: int) -> int:
        """A device allocation of at least ``nbytes`` for tensor ``name``, reused across calls."""
        pointer, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if pointer:
                self._check(self._cudart.cudaFree(pointer), "cudaFree")
                del self._buffers[name]
            pointer = int(self._check(self._cudart.cudaMalloc(nbytes), "cudaMalloc"))
            self._buffers[name] = (pointer, nbytes)
        return pointer

    def _host_buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A page-locked host array of ``shape`` for tensor ``name`` (``cudaMallocHost``), reused across calls."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        pointer, size = self._pinned.get(name, (0, 0))
        if size < nbytes:
            if pointer:
                self._check(self._cudart.cudaFreeHost(pointer), "cudaFreeHost")
                del self._pinned[name]
            pointer = int(self._check(self._cudart.cudaMallocHost(nbytes), "cudaMallocHost"))
            self._pinned[name] = (pointer, nbytes)
        memory = (ctypes.c_char * nbytes).from_address(pointer)
        return np.frombuffer(memory, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    # --- running ------------------------------------------------------------------------------------------------

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        with self.entered():
            if not self._context.set_input_shape(self.input_name, tuple(input_shape)):
                raise RunnerError(f"the engine rejects input shape {tuple(input_shape)}")
            return tuple(self._context.get_tensor_shape(self.output_name))

    def _execute(self, input_pointer: int, output_pointer: int, shape: tuple[int, ...]) -> None:
        """Queue the engine on the executor's stream (the lock is held)."""
        if not self._context.set_input_shape(self.input_name, tuple(shape)):
            raise RunnerError(f"the engine rejects input shape {tuple(shape)}")
        self._context.set_tensor_address(self.input_name, input_pointer)
        self._context.set_tensor_address(self.output_name, output_pointer)
        if not self._context.execute_async_v3(self.stream):
            raise RunnerError(f"TensorRT failed to run the engine: {' | '.join(self._recent_messages(5)) or 'no message'}")

    def run_host(self, batch: np.ndarray) -> np.ndarray:
        """A C-contiguous float32 host batch -> the host result (a new array), copied through the executor's
        pinned host buffers and device buffers."""
        rt = self._cudart
        with self.entered():
            out_shape = self.output_shape(batch.shape)
            staged_input = self._host_buffer(self.input_name, batch.shape, batch.dtype)
            staged_output = self._host_buffer(self.output_name, out_shape, self.output_dtype)
            np.copyto(staged_input, batch)
            source = self._buffer(self.input_name, batch.nbytes)
            target = self._buffer(self.output_name, staged_output.nbytes)
            to_device, to_host = rt.cudaMemcpyKind.cudaMemcpyHostToDevice, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
            self._check(rt.cudaMemcpyAsync(source, staged_input.ctypes.data, batch.nbytes, to_device, self.stream),
                        "copy to GPU")
            self._execute(source, target, batch.shape)
            self._check(rt.cudaMemcpyAsync(staged_output.ctypes.data, target, staged_output.nbytes, to_host,
                                           self.stream), "copy from GPU")
            self.synchronize()
            return staged_output.copy()

    def device_step(self, batch: np.ndarray) -> Callable[[], None]:
        """Copy a C-contiguous float32 host batch into the executor's device buffers once; the returned step
        queues the engine alone on them (no host copies), for timing the network on the device."""
        rt = self._cudart
        with self.entered():
            out_shape = self.output_shape(batch.shape)
            nbytes_out = int(np.prod(out_shape)) * self.output_dtype.itemsize
            source = self._buffer(f"{self.input_name} (device step)", batch.nbytes)
            target = self._buffer(f"{self.output_name} (device step)", nbytes_out)
            to_device = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
            self._check(rt.cudaMemcpyAsync(source, batch.ctypes.data, batch.nbytes, to_device, self.stream),
                        "copy to GPU")
            self.synchronize()
        shape, names = tuple(batch.shape), (f"{self.input_name} (device step)", f"{self.output_name} (device step)")

        def step() -> None:
            with self.entered():
                if [self._buffers.get(name, (0,))[0] for name in names] != [source, target]:
                    raise RunnerError("this device step's buffers were replaced by a later device_step; prepare it again")
                self._execute(source, target, shape)

        return step

    def run_on_device(self, input_pointer: int, output_pointer: int, shape: tuple[int, ...],
                      caller_stream: int) -> None:
        """Run on device memory that the caller's stream produces and consumes: the executor's stream waits for
        what the caller queued so far, and the caller's stream waits for the result. Returns without waiting."""
        rt = self._cudart
        with self.entered():
            self._check(rt.cudaEventRecord(self._caller_ready, caller_stream), "cudaEventRecord")
            self._check(rt.cudaStreamWaitEvent(self.stream, self._caller_ready, 0), "cudaStreamWaitEvent")
            self._execute(input_pointer, output_pointer, shape)
            self._check(rt.cudaEventRecord(self._done, self.stream), "cudaEventRecord")
            self._check(rt.cudaStreamWaitEvent(caller_stream, self._done, 0), "cudaStreamWaitEvent")

    def timer(self) -> Callable[[Callable[[], object]], float]:
        """A ``benchmark.Timer``: milliseconds between CUDA events recorded on the executor's stream around one
        call. Every timer of an executor shares one pair of events."""
        rt = self._cudart
        with self.entered():
            if self._timing_events is None:
                self._timing_events = (self._new_event(rt.cudaEventDefault), self._new_event(rt.cudaEventDefault))
        start, stop = self._timing_events

        def timed(step: Callable[[], object]) -> float:
            with self.entered():
                self._check(rt.cudaEventRecord(start, self.stream), "cudaEventRecord")
                step()
                self._check(rt.cudaEventRecord(stop, self.stream), "cudaEventRecord")
                self._check(rt.cudaEventSynchronize(stop), "cudaEventSynchronize")
                return float(self._check(rt.cudaEventElapsedTime(start, stop), "cudaEventElapsedTime"))

        return timed

    def synchronize(self) -> None:
        with self.entered():
            self._check(self._cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def close(self) -> None:
        """Wait for queued work, then free the buffers, events and stream and release the context; later calls
        raise RunnerError."""
        rt = self._cudart
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._set_device()
            rt.cudaStreamSynchronize(self._stream)
            for pointer, _ in self._buffers.values():
                rt.cudaFree(pointer)
            self._buffers.clear()
            for pointer, _ in self._pinned.values():
                rt.cudaFreeHost(pointer)
            self._pinned.clear()
            for event in (self._caller_ready, self._done, *(self._timing_events or ())):
                rt.cudaEventDestroy(event)
            self._timing_events = None
            rt.cudaStreamDestroy(self._stream)
            self._context = None  # TensorRT wants contexts released before their engine
