"""GPU check of the TensorRT runner's ContextExecutor (runtime/runners/execution.py). There is no TensorRT on the GPU
machines, so an identity "engine" stands in for the execution context: its execute_async_v3 queues a real device
copy on the stream it is given. The executor's device setting, its event ordering with the caller's (PyTorch's)
stream, its host path and its lock then run on a GPU. Run by gpu_check.sh.

  python3 plugins/tests/executor_check.py

The input is produced behind a GPU busy-wait on the caller's stream and read back on that stream, so a missing
wait in either direction shows up as stale data."""
from __future__ import annotations

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
