"""How many CPU threads PyTorch and ONNX Runtime run a model with: one rule for both (``-j/--threads``).

A library's own default counts the machine's cores, not the ones this process may use: in a container limited by
a CPU quota, or beside other jobs pinned to other cores, it starts more threads than there are cores, and
oversubscribed threads run a model several times slower than fewer threads would. The default here is the CPUs
the process may run on (its affinity mask), capped by a cgroup v2 CPU quota when one is set.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from gldfn_model.common.errors import GldfnError

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


class ThreadCountError(GldfnError, ValueError):
    """A thread count below 1."""


def cgroup_cpu_limit(path: Path = CGROUP_CPU_MAX) -> int | None:
    """The CPUs a cgroup v2 quota allows (``cpu.max``: quota and period in microseconds, rounded up), or None
    without a quota."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity mask (``os.sched_getaffinity``), capped by a cgroup CPU quota."""
    if hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:  # macOS, Windows: no affinity call in Python
        count = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return max(1, min(count, limit) if limit is not None else count)


def cpu_threads(requested: int | None = None, library_default: int | None = None) -> int:
    """The intra-op thread count to run a model with: ``requested`` when given, else :func:`usable_cpus`, or
    ``library_default`` when that is lower (a setting made before, such as torchrun's OMP_NUM_THREADS=1, is never
    raised)."""
    if requested is not None:
        if requested < 1:
            raise ThreadCountError(f"--threads {requested}: give at least 1 (default: the {usable_cpus()} CPUs this "
                                   "process may use)")
        return requested
    usable = usable_cpus()
    return min(usable, library_default) if library_default is not None and library_default >= 1 else usable


def set_torch_threads(requested: int | None = None) -> int:
    """Set PyTorch's intra-op threads by :func:`cpu_threads` (PyTorch's current setting as the library default);
    returns the count."""
    import torch

    count = cpu_threads(requested, torch.get_num_threads())
    if count != torch.get_num_threads():
        torch.set_num_threads(count)
    return count
