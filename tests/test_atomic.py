"""atomic_output and the temporaries of gldfn_model.common.temps: the final rename never replaces a file unless asked
(renameat2 RENAME_NOREPLACE, else a hard link, else an exclusive claim), files written together are published
together, and the temporary files and work folders a killed process leaves are removed by the next run once that
process is gone, never a live process's."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import pytest

from gldfn_model.common import atomic, temps
from gldfn_model.common.atomic import (
    STALE_TEMP_SECONDS,
    OutputExistsError,
    atomic_output,
    atomic_outputs,
    check_output,
    output_folder,
    publish,
)
from gldfn_model.common.temps import host_tag, remove_stale_temp_files, remove_stale_work_folders, work_folder


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _temp_of(folder, name: str, pid: int, host: str | None = None):
    path = folder / f".{name}.gldfn-{host or host_tag()}-{pid}-abcd_123.tmp"
    path.write_text("half")
    return path


# ---------------------------------------------------------------- publishing without replacing

@pytest.mark.parametrize("method", ["renameat2", "link", "claim"])
def test_each_way_of_publishing_refuses_an_existing_file(tmp_path, method):
    source, target = tmp_path / "new.tmp", tmp_path / "out.txt"
    if method == "renameat2" and atomic._renameat2() is None:
        pytest.skip("this C library has no renameat2")
    do = {"renameat2": atomic._rename_noreplace, "link": atomic._link_noreplace,
          "claim": atomic._claim_then_replace}[method]
    source.write_text("mine")
    target.write_text("theirs")
    with pytest.raises(FileExistsError):
        do(source, target)
    assert target.read_text() == "theirs" and source.read_text() == "mine"
    target.unlink()
    assert do(source, target) in (True, None)
    assert target.read_text() == "mine" and not source.exists()


def test_atomic_output_refuses_an_existing_file_unless_asked(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("theirs")
    with pytest.raises(OutputExistsError, match="exists already.*--overwrite"):
        with atomic_output(target) as tmp:
            tmp.write_text("mine")
    assert target.read_text() == "theirs" and os.listdir(tmp_path) == ["out.txt"]
    with atomic_output(target, overwrite=True) as tmp:
        tmp.write_text("mine")
    assert target.read_text() == "mine"


def test_a_file_that_appears_during_the_write_is_kept_and_reported(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(OutputExistsError, match="appeared while it was being written"):
        with atomic_output(target) as tmp:
            tmp.write_text("mine")
            target.write_text("another run's")
    assert target.read_text() == "another run's" and os.listdir(tmp_path) == ["out.txt"]


def test_files_written_together_are_published_together_or_not_at_all(tmp_path):
    engine, sidecar = tmp_path / "a.engine", tmp_path / "a.engine.json"
    with pytest.raises(OutputExistsError):
        with atomic_outputs([engine, sidecar]) as (engine_tmp, sidecar_tmp):
            engine_tmp.write_text("engine")
            sidecar_tmp.write_text("sidecar")
            sidecar.write_text("another run's")
    assert not engine.exists() and sidecar.read_text() == "another run's"
    assert sorted(os.listdir(tmp_path)) == ["a.engine.json"]


def test_publish_with_overwrite_replaces(tmp_path):
    (tmp_path / "a").write_text("new")
    (tmp_path / "b").write_text("old")
    publish(tmp_path / "a", tmp_path / "b", overwrite=True)
    assert (tmp_path / "b").read_text() == "new"


# ---------------------------------------------------------------- planning: folders, inputs, existing files

def test_check_output_refuses_a_folder_an_input_and_an_existing_file(tmp_path):
    model = tmp_path / "w.pt"
    model.write_text("weights")
    (tmp_path / "alias.pt").hardlink_to(model)
    with pytest.raises(OutputExistsError, match="is a folder"):
        check_output(tmp_path, overwrite=True)
    for name in ("w.pt", "alias.pt"):  # an input is refused even with overwrite, under any of its names
        with pytest.raises(OutputExistsError, match="is the --checkpoint file this command reads"):
            check_output(tmp_path / name, inputs={"--checkpoint": model}, overwrite=True)
    (tmp_path / "other").write_text("x")
    with pytest.raises(OutputExistsError, match="-o .*other exists already"):
        check_output(tmp_path / "other", inputs={"--checkpoint": model})
    assert check_output(tmp_path / "other", overwrite=True) == tmp_path / "other"
    assert model.read_text() == "weights"


def test_output_folder_removes_the_folders_it_made_when_left_empty(tmp_path):
    with output_folder(tmp_path / "a" / "b"):
        pass
    assert list(tmp_path.iterdir()) == []
    with output_folder(tmp_path / "a" / "b") as folder:
        (folder / "x.png").write_text("x")
    assert (tmp_path / "a" / "b" / "x.png").exists()
    (tmp_path / "kept").mkdir()
    with output_folder(tmp_path / "kept"):
        pass
    assert (tmp_path / "kept").is_dir()  # not made here: left as it was


# ---------------------------------------------------------------- temporaries killed runs leave

def test_a_killed_write_leaves_a_temporary_file_that_the_next_write_in_the_folder_removes(tmp_path):
    target = tmp_path / "last.pt"
    killed = ("import os\nfrom gldfn_model.common.atomic import atomic_output\n"
              f"with atomic_output({str(target)!r}) as tmp:\n    tmp.write_text('half')\n    os._exit(1)\n")
    subprocess.run([sys.executable, "-c", killed], check=False)
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and left[0].name.startswith(".last.pt.gldfn-") and not target.exists()
    with atomic_output(tmp_path / "best.pt") as tmp:  # another file of the folder: its process is gone
        tmp.write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


def test_a_live_process_temporary_file_is_kept(tmp_path):
    live = _temp_of(tmp_path, "photo.png", 1)  # init: always running
    dead = _temp_of(tmp_path, "photo.png", _dead_pid())
    elsewhere = _temp_of(tmp_path, "photo.png", _dead_pid(), host="0a0a0a")  # another host: by age only
    assert remove_stale_temp_files(tmp_path) == [dead]
    assert live.exists() and elsewhere.exists()
    _age(elsewhere, 2 * STALE_TEMP_SECONDS)
    _age(live, 2 * STALE_TEMP_SECONDS)
    assert remove_stale_temp_files(tmp_path) == [elsewhere] and live.exists()


def test_only_old_temporary_files_of_the_written_file_are_removed(tmp_path):
    """Temporary files named before the process id was part of the name: by age, the written file's only."""
    stale = tmp_path / ".last.pt.k3j_9x0a.tmp"
    kept = [
        tmp_path / ".best.pt.k3j_9x0a.tmp",  # another file's: removed by that file's next write
        tmp_path / ".last.pt.tmp",  # not our naming
        tmp_path / "last.pt.k3j_9x0a.tmp",
        tmp_path / ".last.pt.k3j-9x0a.tmp",
        tmp_path / ".last.pt.k3j_9x0a.tmp.bak",
        tmp_path / f".last.pt.gldfn-{host_tag()}-{_dead_pid()}-abcd_123.tmp.bak",
    ]
    for path in [stale, *kept]:
        path.write_text("x")
        _age(path, 2 * STALE_TEMP_SECONDS)
    outside = tmp_path / "elsewhere"
    outside.write_text("a user's file")
    _age(outside, 2 * STALE_TEMP_SECONDS)
    link = tmp_path / f".last.pt.gldfn-{host_tag()}-{_dead_pid()}-linklink.tmp"
    link.symlink_to(outside)
    with atomic_output(tmp_path / "last.pt") as tmp:
        tmp.write_text("new")
    assert not stale.exists()
    assert all(path.exists() for path in kept) and link.is_symlink() and outside.read_text() == "a user's file"


def test_work_folders_of_gone_processes_are_removed_at_the_next_start(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed = ("import os\nfrom gldfn_model.common.temps import work_folder\n"
              "with work_folder('bench') as folder:\n    (folder / 'model.onnx').write_text('x')\n    os._exit(1)\n")
    subprocess.run([sys.executable, "-c", killed], check=False, env={**os.environ, "TMPDIR": str(tmp_path)})
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(f"gldfn-bench-{host_tag()}-")
    live = tmp_path / f"gldfn-bench-{host_tag()}-1-abcd_123"
    live.mkdir()
    other = tmp_path / "gldfn-bench-k3j_9x0a"  # no process id (another version's): left alone
    other.mkdir()
    with work_folder("bench") as folder:
        assert folder.parent == tmp_path and folder.is_dir()
        assert not left.exists() and live.is_dir() and other.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
    assert remove_stale_work_folders(tmp_path) == []


def test_the_folder_is_swept_once_per_process(tmp_path):
    temps.sweep_once(tmp_path)
    dead = _temp_of(tmp_path, "a.png", _dead_pid())
    temps.sweep_once(tmp_path)  # a long run does not rescan its folder at each write
    assert dead.exists()
