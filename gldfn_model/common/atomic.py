"""Write files under a temporary name in the destination folder, then rename: readers never see a
half-written file and a failed write leaves nothing behind. A process killed mid-write leaves its temporary
file; the next write of the same file removes it once it is old enough to have no live writer."""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from gldfn_model.common.errors import GldfnError

# A temporary file untouched this long is taken to be left by a dead process (a live writer keeps writing).
STALE_TEMP_SECONDS = 10 * 60
# mkstemp's random part: 8 characters of this set.
_RANDOM_PART = "[a-z0-9_]{8}"


class OutputPathError(GldfnError, ValueError):
    """The output location cannot be written."""


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def remove_stale_temps(target: str | os.PathLike[str], older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove the temporary files ``atomic_output`` made for ``target`` that are regular files untouched for
    ``older_than`` seconds; return them. Files named otherwise, links and recent files are left alone."""
    target = Path(target)
    pattern = re.compile(re.escape(_temp_prefix(target)) + _RANDOM_PART + re.escape(".tmp"))
    now, removed = time.time(), []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        try:
            if (pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime > older_than):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone meanwhile, or not ours to remove
            continue
    return removed


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_output_folder(path: str | os.PathLike[str]) -> Path:
    """Create the output folder ``path`` (and its parents) unless it exists; OutputPathError when it cannot be."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission, a read-only file system
        raise OutputPathError(f"cannot create the output folder {folder}: {exc.strerror or exc} "
                              "(choose another output folder)") from exc
    return folder


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``, on error removed."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {target}: folder {folder} does not exist (create it first)")
    if not os.access(folder, os.W_OK):
        raise OutputPathError(f"cannot write {target}: folder {folder} is not writable (choose another output path)")
    remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
