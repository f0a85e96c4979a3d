"""GPU check of the TensorRT runner's ContextExecutor (runtime/runners/execution.py). There is no TensorRT on the GPU
machines, so an identity "engine" stands in for the execution context: its execute_async_v3 queues a real device
copy on the stream it is given. The executor's device setting, its event ordering with the caller's (PyTorch's)
stream, its host path and its lock then run on a GPU. Run by gpu_check.sh.

  python3 plugins/tests/executor_check.py

The input is produced behind a GPU busy-wait on the caller's stream and read back on that stream, so a missing
wait in either direction shows up as stale data.

The executor makes its device current before each use. With two GPUs or more it runs on the last one and threads
that start on GPU 0 use it. On one GPU no other device exists, so a thread makes a second CUDA context of the same
GPU current instead (as another library may): the executor must still run in its own. A control first queues a
copy on the executor's stream without switching; whether that fails says whether the case can fail here, and the
output says so. Exits 2 without a GPU."""
from __future__ import annotations

import ctypes
import importlib.util
import sys
import threading
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def import_runtime_from_source():
    """gldfn_runtime lives in runtime/ (an installed package maps the name); load it from the source tree."""
    spec = importlib.util.spec_from_file_location("gldfn_runtime", REPO / "runtime" / "__init__.py",
                                                  submodule_search_locations=[str(REPO / "runtime")])
    module = importlib.util.module_from_spec(spec)
    sys.modules["gldfn_runtime"] = module
    spec.loader.exec_module(module)
    from gldfn_runtime.runners import execution as trt_execution

    return trt_execution


class CopyContext:
    """An execution context whose engine is the identity: output = input, as a device copy on the given stream."""

    def __init__(self, cudart) -> None:
        self.cudart = cudart
        self.shape = None
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name, shape):
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self.shape

    def set_tensor_address(self, name, pointer):
        self.addresses[name] = int(pointer)
        return True

    def execute_async_v3(self, stream):
        nbytes = int(np.prod(self.shape)) * 4
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        error, = self.cudart.cudaMemcpyAsync(self.addresses["sr"], self.addresses["lr"], nbytes, kind, stream)
        return error == self.cudart.cudaError_t.cudaSuccess


class ForeignContext:
    """A CUDA context of ``device`` besides its primary one (the one PyTorch and the CUDA runtime use), made current
    in the calling thread with :meth:`make_current`; through the driver API (libcuda), as another library would."""

    def __init__(self, device: int) -> None:
        self.cuda = ctypes.CDLL("libcuda.so.1")
        handle, self.context = ctypes.c_int(), ctypes.c_void_p()
        for call, args in (("cuInit", (0,)), ("cuDeviceGet", (ctypes.byref(handle), device)),
                           ("cuCtxCreate_v2", (ctypes.byref(self.context), 0, handle))):
            if getattr(self.cuda, call)(*args) != 0:
                raise RuntimeError(f"{call} failed")

    def make_current(self) -> None:
        if self.cuda.cuCtxSetCurrent(self.context) != 0:
            raise RuntimeError("cuCtxSetCurrent failed")

    def is_current(self) -> bool:
        current = ctypes.c_void_p()
        self.cuda.cuCtxGetCurrent(ctypes.byref(current))
        return current.value == self.context.value

    def close(self) -> None:
        self.cuda.cuCtxDestroy_v2(self.context)


def foreign_context_case(executor, cudart, device: int, host: np.ndarray, runner_error: type) -> list[bool]:
    """In a thread with a second context of the executor's GPU current: a control (a copy on the executor's stream
    without switching, which fails if that context is used), then the executor's host path."""
    results: list[bool] = []
    with executor.entered():  # here, in the executor's own context
        scratch = executor._buffer("control", 32)

    def worker() -> None:
        foreign = ForeignContext(device)
        try:
            foreign.make_current()
            error, = cudart.cudaMemcpyAsync(scratch + 16, scratch, 16,
                                            cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice, executor.stream)
            discriminates = error != cudart.cudaError_t.cudaSuccess
            print(f"note: control: the executor's stream used from the foreign context without switching: "
                  f"{'fails' if discriminates else 'works'} ({error}); the case below "
                  f"{'can fail' if discriminates else 'CANNOT fail on this machine: no evidence from it'}",
                  flush=True)
            foreign.make_current()
            try:
                same = np.array_equal(executor.run_host(host), host)
                detail = "" if same else "wrong output"
            except runner_error as error:
                same, detail = False, str(error)
            results.append(check("a thread with another CUDA context of the GPU current", same and not
                                 foreign.is_current(), detail or "the executor switched to its own context"))
        finally:
            foreign.close()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    return results


def check(name: str, ok: bool, detail: str = "") -> bool:
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def main() -> int:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        print("skipped: cuda-python (cuda.bindings) is not installed here; pip install cuda-python matching the "
              "CUDA major of PyTorch to run this check")
        return 0
    if not torch.cuda.is_available():
        print("executor_check.py: no CUDA GPU visible to PyTorch: run it on the GPU machine", file=sys.stderr)
        return 2
    trt_execution = import_runtime_from_source()
    device = torch.cuda.device_count() - 1  # the last GPU: a thread starting on GPU 0 must be moved there
    executor = trt_execution.ContextExecutor(CopyContext(cudart), "lr", "sr", np.float32, device, cudart=cudart)
    results = []
    shape = (1, 3, 256, 512)

    host = np.random.default_rng(0).random(shape, dtype=np.float32)
    results.append(check("host path returns the engine's output", np.array_equal(executor.run_host(host), host)))

    stream = torch.cuda.Stream(device)
    with torch.cuda.device(device), torch.cuda.stream(stream):
        for value in (1.0, 2.0, 3.0):
            x = torch.zeros(shape, device=f"cuda:{device}")
            out = torch.zeros_like(x)
            torch.cuda._sleep(20_000_000)  # keep the caller's stream busy, then write the input behind it
            x.fill_(value)
            executor.run_on_device(x.data_ptr(), out.data_ptr(), shape, stream.cuda_stream)
            out.add_(1.0)  # on the caller's stream: must follow the engine's copy
            got = float(out.mean().item())
            results.append(check(f"caller-stream ordering (input {value})", got == value + 1.0, f"mean {got}"))

    def worker(index: int, failures: list[str]) -> None:
        torch.cuda.set_device(0)  # a fresh thread's current device is GPU 0, not necessarily the executor's
        thread_stream = torch.cuda.Stream(device)
        with torch.cuda.stream(thread_stream):
            for step in range(20):
                value = float(index * 100 + step)
                x = torch.full(shape, value, device=f"cuda:{device}")
                out = torch.empty_like(x)
                executor.run_on_device(x.data_ptr(), out.data_ptr(), shape, thread_stream.cuda_stream)
                if float(out.min().item()) != value or float(out.max().item()) != value:
                    failures.append(f"thread {index} step {step}")

    failures: list[str] = []
    threads = [threading.Thread(target=worker, args=(i, failures)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.append(check("4 threads sharing the executor", not failures, ", ".join(failures[:5])))
    if device == 0:
        print("note: one GPU: threads starting on GPU 0 need no device move; a foreign context stands in", flush=True)
        results += foreign_context_case(executor, cudart, device, host, trt_execution.RunnerError)

    timers = [executor.timer() for _ in range(3)]
    times = [timer(lambda: executor.run_host(host)) for timer in timers]
    results.append(check("event timers", all(t > 0 for t in times), ", ".join(f"{t:.3f} ms" for t in times)))
    executor.close()
    try:
        executor.run_host(host)
        results.append(check("closed executor refuses work", False))
    except trt_execution.RunnerError:
        results.append(check("closed executor refuses work", True))
    print(f"executor: {sum(results)}/{len(results)} checks passed", flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
