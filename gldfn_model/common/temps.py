"""The names of the project's temporary files and folders, and the sweep that removes those a killed run left.

A temporary output file is ``.NAME.gldfn-HOST-PID-XXXXXXXX.tmp`` beside ``NAME``; a work folder is
``gldfn-KIND-HOST-PID-XXXXXXXX`` in the system's temporary folder (HOST: a short digest of the host name, PID: the
writing process, X: random). Such an entry is stale, and removed, when its process is gone on this host; when it
was made on another host (a shared file system) it is stale once untouched for ``STALE_TEMP_SECONDS``. A live
run's temporary is never removed, and nothing named otherwise is touched: no links, no other files.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# A temporary of another host (or of the naming before the process id was part of it) untouched this long is taken
# to be left by a dead process.
STALE_TEMP_SECONDS = 10 * 60
TEMP_SUFFIX = ".tmp"
_RANDOM = "[a-z0-9_]{8}"  # tempfile's random part
_OWNER = r"gldfn-(?P<host>[0-9a-f]{6})-(?P<pid>[0-9]{1,10})-"
_TEMP_FILE = re.compile(r"\..+\." + _OWNER + _RANDOM + re.escape(TEMP_SUFFIX))
_WORK_FOLDER = re.compile(r"gldfn-[a-z0-9]+-" + _OWNER.removeprefix("gldfn-") + _RANDOM)
# Room for the owner and random parts within the usual 255-byte limit of a file name.
_NAME_ROOM = 200
_swept: set[str] = set()


def host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _owner() -> str:
    return f"gldfn-{host_tag()}-{os.getpid()}-"


def temp_file_prefix(target: Path) -> str:
    """The prefix (for ``tempfile.mkstemp``, with TEMP_SUFFIX) of this process's temporary files for ``target``."""
    return f".{target.name[:_NAME_ROOM]}.{_owner()}"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process, or not a pid this system has
        return True
    return True


def is_stale(match: re.Match[str], mtime: float, now: float | None = None) -> bool:
    """Whether the temporary whose name gave ``match`` was left by a process that is gone (see the module)."""
    if match["host"] == host_tag() and int(match["pid"]) > 0:
        return not _process_alive(int(match["pid"]))
    return (now if now is not None else time.time()) - mtime > STALE_TEMP_SECONDS


def _stale_entries(folder: Path, pattern: re.Pattern[str], want_dir: bool) -> Iterator[os.DirEntry[str]]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            kind_ok = entry.is_dir(follow_symlinks=False) if want_dir else entry.is_file(follow_symlinks=False)
            if kind_ok and is_stale(match, entry.stat(follow_symlinks=False).st_mtime):
                yield entry
        except OSError:  # gone meanwhile
            continue


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the stale temporary outputs of ours in ``folder`` (any target's: files, and the folders a whole
    output folder is written in first); return them."""
    removed = []
    for entry in _stale_entries(Path(folder), _TEMP_FILE, want_dir=False):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    for entry in _stale_entries(Path(folder), _TEMP_FILE, want_dir=True):
        with contextlib.suppress(OSError):
            shutil.rmtree(entry.path)
            removed.append(Path(entry.path))
    return removed


def sweep_once(folder: str | os.PathLike[str]) -> None:
    """``remove_stale_temp_files(folder)`` the first time this process writes into ``folder``: one scan of a
    folder per run, however many files it writes there."""
    key = os.path.realpath(folder)
    if key not in _swept:
        _swept.add(key)
        remove_stale_temp_files(folder)


def remove_stale_work_folders(parent: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the stale work folders of ours (any kind) in ``parent`` (default: the system's temporary folder)."""
    removed = []
    for entry in _stale_entries(Path(parent or tempfile.gettempdir()), _WORK_FOLDER, want_dir=True):
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            shutil.rmtree(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def new_work_folder(kind: str) -> Path:
    """A new temporary work folder named for this process (``gldfn-KIND-...``) in the system's temporary folder; the
    stale ones killed runs left are removed first. The caller removes it (or uses :func:`work_folder`)."""
    if not re.fullmatch("[a-z0-9]+", kind):
        raise ValueError(f"a work folder kind is lower-case letters and digits, got {kind!r}")
    remove_stale_work_folders()
    return Path(tempfile.mkdtemp(prefix=f"gldfn-{kind}-{_owner().removeprefix('gldfn-')}"))


@contextlib.contextmanager
def work_folder(kind: str) -> Iterator[Path]:
    """:func:`new_work_folder`, removed on exit."""
    folder = new_work_folder(kind)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
