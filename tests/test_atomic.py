"""atomic_output: the temporary file a killed process leaves is removed by the next write of the same file once
it is old enough; nothing else in the folder is touched."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from gldfn_model.common.atomic import STALE_TEMP_SECONDS, atomic_output


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def test_a_killed_write_leaves_a_temporary_file_that_the_next_write_removes(tmp_path):
    target = tmp_path / "last.pt"
    killed = ("import os\nfrom gldfn_model.common.atomic import atomic_output\n"
              f"with atomic_output({str(target)!r}) as tmp:\n    tmp.write_text('half')\n    os._exit(1)\n")
    subprocess.run([sys.executable, "-c", killed], check=False)
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and left[0].name.startswith(".last.pt.") and not target.exists()
    with atomic_output(target) as tmp:
        tmp.write_text("recent write")
    assert left[0].exists()  # too recent: its writer may be alive
    _age(left[0], 2 * STALE_TEMP_SECONDS)
    with atomic_output(target) as tmp:
        tmp.write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"] and target.read_text() == "whole"


def test_only_old_temporary_files_of_the_written_file_are_removed(tmp_path):
    stale = tmp_path / ".last.pt.k3j_9x0a.tmp"
    kept = [
        tmp_path / ".best.pt.k3j_9x0a.tmp",  # another file's: removed by that file's next write
        tmp_path / ".last.pt.tmp",  # not our naming
        tmp_path / "last.pt.k3j_9x0a.tmp",
        tmp_path / ".last.pt.k3j-9x0a.tmp",
        tmp_path / ".last.pt.k3j_9x0a.tmp.bak",
    ]
    for path in [stale, *kept]:
        path.write_text("x")
        _age(path, 2 * STALE_TEMP_SECONDS)
    outside = tmp_path / "elsewhere"
    outside.write_text("a user's file")
    _age(outside, 2 * STALE_TEMP_SECONDS)
    link = tmp_path / ".last.pt.linklink.tmp"
    link.symlink_to(outside)
    _age(link, 2 * STALE_TEMP_SECONDS)
    with atomic_output(tmp_path / "last.pt") as tmp:
        tmp.write_text("new")
    assert not stale.exists()
    assert all(path.exists() for path in kept) and link.is_symlink() and outside.read_text() == "a user's file"
