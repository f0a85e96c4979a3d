"""Write files under a temporary name in the destination folder, then rename: readers never see a
half-written file and a failed write leaves nothing behind."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gldfn_model.common.errors import GldfnError


class OutputPathError(GldfnError, ValueError):
    """The output location cannot be written."""


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
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
