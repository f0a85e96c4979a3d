"""ContextExecutor, the part of the TensorRT runner that threads share, with a recording stand-in for
cuda-python's runtime and for TensorRT's execution context (no GPU here; gpu_check.py runs the executor on a real
one): the device is made current at every entry, from any thread; calls on one context never overlap; work from
a caller's stream is ordered with the executor's stream by events; events are made once and all freed. Also the
runner's checks that need no GPU: tensors on another device, host code for engines with an embedded plugin."""
from __future__ import annotations

import ctypes
import threading
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gldfn_model.inference.runner import RunnerError
from gldfn_runtime.runners.execution import ContextExecutor

SUCCESS = "cudaSuccess"


class RecordingCudart:
    """The cuda.bindings.runtime calls the executor makes, recorded with the calling thread's current device
    (CUDA keeps one per host thread)."""

    cudaError_t = SimpleNamespace(cudaSuccess=SUCCESS)
    cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice="H2D", cudaMemcpyDeviceToHost="D2H")
    cudaStreamNonBlocking, cudaEventDefault, cudaEventDisableTiming = 1, 0, 2

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.lock = threading.Lock()
        self.local = threading.local()
        self.handles = 1000
        self.live_events: set[int] = set()
        self.events_created = 0
        self.host_memory: dict[int, ctypes.Array] = {}  # page-locked host buffers: real memory, as numpy writes them

    def _handle(self) -> int:
        with self.lock:
            self.handles += 1
            return self.handles

    def current_device(self) -> int:
        return getattr(self.local, "device", 0)

    def _record(self, name: str, *args) -> None:
        with self.lock:
            self.calls.append((name, self.current_device(), *args))

    def cudaGetErrorString(self, error):
        return SUCCESS, str(error).encode()

    def cudaSetDevice(self, device):
        self.local.device = device
        self._record("cudaSetDevice", device)
        return (SUCCESS,)

    def cudaStreamCreateWithFlags(self, flags):
        handle = self._handle()
        self._record("cudaStreamCreateWithFlags", flags, handle)
        return SUCCESS, handle

    def cudaEventCreateWithFlags(self, flags):
        handle = self._handle()
        self.live_events.add(handle)
        self.events_created += 1
        self._record("cudaEventCreateWithFlags", flags, handle)
        return SUCCESS, handle

    def cudaEventDestroy(self, event):
        self.live_events.remove(event)
        self._record("cudaEventDestroy", event)
        return (SUCCESS,)

    def cudaMalloc(self, nbytes):
        handle = self._handle()
        self._record("cudaMalloc", nbytes, handle)
        return SUCCESS, handle

    def cudaMallocHost(self, nbytes):
        memory = ctypes.create_string_buffer(nbytes)
        pointer = ctypes.addressof(memory)
        self.host_memory[pointer] = memory
        self._record("cudaMallocHost", nbytes, pointer)
        return SUCCESS, pointer

    def cudaFreeHost(self, pointer):
        del self.host_memory[pointer]
        self._record("cudaFreeHost", pointer)
        return (SUCCESS,)

    def __getattr__(self, name):
        if not name.startswith("cuda"):
            raise AttributeError(name)

        def call(*args):
            self._record(name, *args)
            return SUCCESS, 1.5 if name == "cudaEventElapsedTime" else None

        return call

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


class RecordingContext:
    """A TensorRT execution context that doubles the input's spatial size and notes each run: the thread's
    current device, the stream, and whether another run was in progress."""

    def __init__(self, cudart: RecordingCudart) -> None:
        self.cudart = cudart
        self.shape = None
        self.runs: list[dict] = []
        self.active = 0
        self.overlaps = 0

    def set_input_shape(self, name, shape):
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        n, c, h, w = self.shape
        return (n, c, 2 * h, 2 * w)

    def set_tensor_address(self, name, pointer):
        return True

    def execute_async_v3(self, stream):
        self.active += 1
        self.overlaps += self.active > 1
        time.sleep(0.002)  # a window for another thread to walk in
        self.runs.append({"device": self.cudart.current_device(), "stream": stream, "thread": threading.get_ident()})
        self.cudart._record("execute_async_v3", stream)
        self.active -= 1
        return True


@pytest.fixture
def cuda():
    return RecordingCudart()


def make_executor(cuda: RecordingCudart, device: int = 1) -> tuple[ContextExecutor, RecordingContext]:
    context = RecordingContext(cuda)
    return ContextExecutor(context, "lr", "sr", np.float32, device, cudart=cuda), context


def test_every_run_makes_the_device_current_also_from_another_thread(cuda):
    executor, context = make_executor(cuda, device=1)
    batch = np.zeros((1, 3, 4, 5), np.float32)
    cuda.cudaSetDevice(0)  # another runner in this thread chose GPU 0
    assert executor.run_host(batch).shape == (1, 3, 8, 10)

    def other_thread():
        cuda.cudaSetDevice(0)  # a fresh thread starts on GPU 0
        executor.run_host(batch)

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert [run["device"] for run in context.runs] == [1, 1]
    assert len({run["thread"] for run in context.runs}) == 2
    assert all(call[1] == 1 for call in cuda.calls if call[0] in ("cudaMemcpyAsync", "cudaMalloc", "execute_async_v3"))


def test_threads_sharing_an_executor_never_overlap_on_its_context(cuda):
    executor, context = make_executor(cuda)
    batch = np.zeros((1, 3, 4, 4), np.float32)
    workers = [threading.Thread(target=lambda: [executor.run_host(batch) for _ in range(5)]) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(context.runs) == 20 and context.overlaps == 0
    assert {run["stream"] for run in context.runs} == {executor.stream}


def test_host_runs_copy_run_and_copy_back_on_the_executor_stream_then_wait(cuda):
    executor, _ = make_executor(cuda)
    cuda.calls.clear()
    executor.run_host(np.zeros((1, 3, 4, 4), np.float32))
    work = [call for call in cuda.calls if call[0] in ("cudaMemcpyAsync", "execute_async_v3", "cudaStreamSynchronize")]
    assert [call[0] for call in work] == ["cudaMemcpyAsync", "execute_async_v3", "cudaMemcpyAsync", "cudaStreamSynchronize"]
    assert work[0][5] == "H2D" and work[2][5] == "D2H"
    assert {call[-1] for call in work} == {executor.stream}


def test_device_runs_are_ordered_with_the_callers_stream_by_events(cuda):
    executor, _ = make_executor(cuda)
    caller_stream = 77
    cuda.calls.clear()
    executor.run_on_device(0x1000, 0x2000, (1, 3, 4, 4), caller_stream)
    ordering = [(call[0], *call[2:]) for call in cuda.calls if call[0] != "cudaSetDevice"]
    ready, done = executor._caller_ready, executor._done
    assert ordering == [
        ("cudaEventRecord", ready, caller_stream),          # what the caller queued so far ...
        ("cudaStreamWaitEvent", executor.stream, ready, 0),  # ... comes before the engine
        ("execute_async_v3", executor.stream),
        ("cudaEventRecord", done, executor.stream),         # the result ...
        ("cudaStreamWaitEvent", caller_stream, done, 0),     # ... comes before the caller's next work
    ]


def test_timers_share_one_pair_of_events_and_close_frees_every_event(cuda):
    executor, _ = make_executor(cuda)
    batch = np.zeros((1, 3, 4, 4), np.float32)
    timers = [executor.timer() for _ in range(3)]
    assert [timer(lambda: executor.run_host(batch)) for timer in timers] == [1.5, 1.5, 1.5]
    assert cuda.events_created == 4  # two for ordering, two for timing
    executor.close()
    assert cuda.live_events == set()
    assert "cudaStreamDestroy" in cuda.names() and cuda.names().count("cudaFree") == 2
    executor.close()  # a second close does nothing
    with pytest.raises(RunnerError, match="closed"):
        executor.run_host(batch)


def test_tensors_off_the_runners_gpu_are_refused():
    from gldfn_runtime.runners.trt_runner import check_tensor_device

    with pytest.raises(RunnerError, match=r"runs on cuda:1; the tensor is on cpu"):
        check_tensor_device(torch.zeros(1, 3, 4, 4), 1)
    meta = torch.empty(1, 3, 4, 4, device="meta")
    with pytest.raises(RunnerError, match="the tensor is on meta"):
        check_tensor_device(meta, 0)


def test_runtimes_for_engines_with_an_embedded_plugin_allow_host_code():
    from gldfn_runtime.runners.trt_runner import make_runtime
    from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt
    from gldfn_runtime.tensorrt.logger import process_logger

    try:
        trt = load_tensorrt("tensorrt_rtx").module
    except TensorRTUnavailable as error:
        pytest.skip(f"TensorRT-RTX is not installed: {error}")
    assert make_runtime(trt, process_logger(trt), embedded_plugin=True).engine_host_code_allowed
    assert not make_runtime(trt, process_logger(trt), embedded_plugin=False).engine_host_code_allowed


def test_host_runs_copy_through_pinned_buffers_and_return_a_fresh_array(cuda):
    executor, _ = make_executor(cuda)
    batch = np.arange(48, dtype=np.float32).reshape(1, 3, 4, 4)
    cuda.calls.clear()
    first = executor.run_host(batch)
    second = executor.run_host(batch)
    copies = [call for call in cuda.calls if call[0] == "cudaMemcpyAsync"]
    pinned = set(cuda.host_memory)
    assert len(pinned) == 2 and cuda.names().count("cudaMallocHost") == 2  # made once, reused
    assert copies[0][5] == "H2D" and copies[0][3] in pinned  # from a pinned source ...
    assert copies[1][5] == "D2H" and copies[1][2] in pinned  # ... into a pinned target
    staged = np.frombuffer(cuda.host_memory[copies[0][3]], dtype=np.float32, count=batch.size)
    np.testing.assert_array_equal(staged, batch.ravel())  # the batch went through the pinned buffer
    assert first.shape == (1, 3, 8, 8) and not np.shares_memory(first, second)
    executor.close()
    assert cuda.host_memory == {} and cuda.names().count("cudaFreeHost") == 2


def test_a_device_step_runs_the_engine_alone_between_the_timing_events(cuda):
    executor, context = make_executor(cuda)
    batch = np.zeros((1, 3, 4, 4), np.float32)
    step = executor.device_step(batch)
    timer = executor.timer()
    cuda.calls.clear()
    assert timer(step) == 1.5
    timed = [call[0] for call in cuda.calls if call[0] not in ("cudaSetDevice",)]
    assert timed == ["cudaEventRecord", "execute_async_v3", "cudaEventRecord", "cudaEventSynchronize",
                     "cudaEventElapsedTime"]  # no copy inside the timed region
    executor.device_step(np.zeros((1, 3, 8, 8), np.float32))  # larger: its buffers are made anew
    with pytest.raises(RunnerError, match="replaced by a later device_step"):
        step()


def test_stream_handles_are_read_without_the_deprecated_int():
    runtime = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    pytest.importorskip("cuda.bindings.utils", reason="cuda-python < 12.9.1 has no cuda.bindings.utils")
    from gldfn_runtime.runners.execution import native_handle

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DeprecationWarning would fail here
        assert native_handle(runtime.cudaStream_t(1234)) == 1234 and native_handle(runtime.cudaEvent_t(77)) == 77
    assert native_handle(5) == 5
