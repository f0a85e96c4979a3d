"""The one thread rule (gldfn_model.common.threads) and where it reaches: ONNX Runtime sessions, PyTorch, -j."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from gldfn_export.exporter import export_gldfn
from gldfn_model.common.threads import ThreadCountError, cgroup_cpu_limit, cpu_threads, set_torch_threads, usable_cpus
from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
from gldfn_model.inference.torch_runner import TorchRunner
from gldfn_model.network.config import get_config
from gldfn_model.network.gldfn import GLDFN

needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no os.sched_setaffinity here")


@pytest.mark.parametrize("text, cpus", [("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000\n", 2),
                                        ("50000 100000\n", 1), ("", None)])
def test_cgroup_quota_is_read_as_whole_cpus(tmp_path, text, cpus):
    path = tmp_path / "cpu.max"
    path.write_text(text)
    assert cgroup_cpu_limit(path) == cpus
    assert cgroup_cpu_limit(tmp_path / "absent") is None


def test_default_is_the_usable_cpus_and_a_lower_library_setting_is_kept():
    usable = usable_cpus()
    assert 1 <= usable <= (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    assert cpu_threads() == usable
    assert cpu_threads(None, 1) == 1 and cpu_threads(None, usable + 8) == usable
    assert cpu_threads(3) == 3  # an explicit count is taken as given
    with pytest.raises(ThreadCountError, match="at least 1"):
        cpu_threads(0)


@needs_affinity
def test_one_pinned_cpu_gives_one_thread_to_torch_and_onnxruntime(tmp_path):
    """A child pinned to one CPU before anything starts threads: the default is 1 for both libraries."""
    torch.manual_seed(0)
    path = tmp_path / "tiny.onnx"
    export_gldfn(GLDFN(get_config("tiny", 4)), path, verify=False, config_name="tiny")
    code = textwrap.dedent(f"""
        import os
        os.sched_setaffinity(0, {{sorted(os.sched_getaffinity(0))[0]}})
        import torch
        torch.set_num_threads(4)  # oversubscribed, as a library default could be
        from gldfn_model.common.threads import set_torch_threads
        from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner
        runner = OnnxRuntimeRunner({str(path)!r})
        print(set_torch_threads(), torch.get_num_threads(), runner.session.get_session_options().intra_op_num_threads)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1", "1"]


def test_runners_take_the_count_given(tmp_path):
    torch.manual_seed(0)
    model = GLDFN(get_config("tiny", 4))
    path = tmp_path / "tiny.onnx"
    export_gldfn(model, path, verify=False, config_name="tiny")
    assert OnnxRuntimeRunner(path, threads=1).session.get_session_options().intra_op_num_threads == 1
    assert OnnxRuntimeRunner(path).session.get_session_options().intra_op_num_threads == usable_cpus()
    before = torch.get_num_threads()
    try:
        TorchRunner(model, threads=2)
        assert torch.get_num_threads() == 2
        TorchRunner(model)  # no count: never raised above what is set
        assert torch.get_num_threads() == min(2, usable_cpus())
        assert set_torch_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
