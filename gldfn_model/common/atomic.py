"""How every command writes a file: under a temporary name in the destination folder, then published by a rename
that never replaces a file unless asked (``overwrite``). Readers never see a half-written file, a failed write
leaves nothing behind, and a file that appeared while the output was being written (another run) is reported,
not replaced. :func:`check_output` is the same rule at planning time, before any slow work: no output onto an
input, none onto an existing file unless ``overwrite``, none onto a folder.

A process killed mid-write leaves its temporary file (gldfn_model.common.temps names it); the first write of the
next run into that folder removes it once its process is gone.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from gldfn_model.common.errors import GldfnError
from gldfn_model.common.temps import STALE_TEMP_SECONDS, TEMP_SUFFIX, sweep_once, temp_file_prefix

__all__ = ["STALE_TEMP_SECONDS", "OutputExistsError", "OutputPathError", "atomic_output", "atomic_outputs",
           "check_output", "make_output_folder", "output_folder", "publish", "remove_stale_temps"]

# Before the process id was part of a temporary's name: mkstemp's random part, 8 characters of this set.
_LEGACY_RANDOM = "[a-z0-9_]{8}"
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
# errno values with which renameat2 or link say the file system cannot do it (not that the target exists).
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM, errno.EMLINK}


class OutputPathError(GldfnError, ValueError):
    """The output location cannot be written."""


class OutputExistsError(OutputPathError):
    """An output would replace an input, an existing file or a folder; or a file appeared where it was to go."""


def remove_stale_temps(target: str | os.PathLike[str], older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove the temporary files an older version of ``atomic_output`` made for ``target`` (no process id in the
    name) that are regular files untouched for ``older_than`` seconds; return them. The current naming is swept
    by gldfn_model.common.temps."""
    target = Path(target)
    pattern = re.compile(re.escape(f".{target.name}.") + _LEGACY_RANDOM + re.escape(TEMP_SUFFIX))
    now, removed = time.time(), []
    try:
        entries = list(os.scandir(target.parent if str(target.parent) else "."))
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
    """Create the output folder ``path`` (and its parents) unless it exists; OutputPathError when it cannot be.
    The temporary files killed runs left there are removed."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission, a read-only file system
        raise OutputPathError(f"cannot create the output folder {folder}: {exc.strerror or exc} "
                              "(choose another output folder)") from exc
    sweep_once(folder)
    return folder


@contextlib.contextmanager
def output_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """``make_output_folder(path)`` for the time of the block; the folders it created are removed again when
    nothing was written into them (a run whose every file failed leaves no empty folder)."""
    folder = Path(path)
    created = [p for p in (folder, *folder.parents) if not p.exists() and str(p) not in ("", ".")]
    make_output_folder(folder)
    try:
        yield folder
    finally:
        for made in created:  # deepest first; rmdir removes only empty folders
            try:
                os.rmdir(made)
            except OSError:
                break


def _same_file(path: Path, other: Path) -> bool:
    """Same file by device and inode (links, hard links, case-insensitive names), or the same resolved path."""
    try:
        return os.path.samefile(path, other)
    except OSError:
        return path.resolve() == other.resolve()


def check_output(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    option: str = "-o",
) -> Path:
    """The planning check of one output file (before any slow work): OutputExistsError when ``path`` is a folder,
    one of ``inputs`` (``{"--checkpoint": path}``: what the user named, for the message; never replaced) or an
    existing file (unless ``overwrite``). The temporary files killed runs left in its folder are removed."""
    target = Path(path)
    if target.is_dir():
        raise OutputExistsError(f"{option} {target} is a folder; name the file to write (e.g. {target / 'NAME'})")
    if target.exists():
        for label, source in (inputs or {}).items():
            if source is not None and Path(source).exists() and _same_file(target, Path(source)):
                raise OutputExistsError(f"{option} {target} is the {label} file this command reads; write the output "
                                        "under another name")
        if not overwrite:
            raise OutputExistsError(f"{option} {target} exists already: choose another name, or pass --overwrite to "
                                    "replace it")
    folder = target.parent if str(target.parent) else Path(".")
    if folder.is_dir():
        sweep_once(folder)
    return target


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library without it (glibc < 2.28)
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _rename_noreplace(source: Path, target: Path) -> bool:
    """renameat2(RENAME_NOREPLACE): True when done, False when this system or file system cannot do it;
    FileExistsError when ``target`` exists."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(target))


def _link_noreplace(source: Path, target: Path) -> bool:
    """A hard link then the unlink of ``source``: True when done, False when the file system has no hard links;
    FileExistsError when ``target`` exists."""
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno in _UNSUPPORTED:
            return False
        raise
    os.unlink(source)
    return True


def _claim_then_replace(source: Path, target: Path) -> None:
    """For file systems with neither (and folders, which have no hard links): claim the name with an exclusive
    create (FileExistsError when taken), then replace that empty claim; another writer using this rule fails on
    the claim."""
    if source.is_dir():
        os.mkdir(target, 0o700)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.replace(source, target)


def publish(source: str | os.PathLike[str], target: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Rename the finished temporary file (or folder) ``source`` onto ``target``. Unless ``overwrite`` an existing
    ``target`` is never replaced, even one that appeared a moment ago: OutputExistsError, and ``source`` stays for
    the caller."""
    source, target = Path(source), Path(target)
    if overwrite:
        os.replace(source, target)
        return
    try:
        if not (_rename_noreplace(source, target) or _link_noreplace(source, target)):
            _claim_then_replace(source, target)
    except FileExistsError:
        raise OutputExistsError(f"{target} appeared while it was being written (another run writing there?); it was "
                                "kept and this output was not written: choose another name, or pass --overwrite to "
                                "replace it") from None


def _temporary_for(target: Path, overwrite: bool) -> Path:
    """A new empty temporary file beside ``target``, after the checks a write starts with."""
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {target}: folder {folder} does not exist (create it first)")
    if not os.access(folder, os.W_OK):
        raise OutputPathError(f"cannot write {target}: folder {folder} is not writable (choose another output path)")
    if target.is_dir():
        raise OutputExistsError(f"cannot write {target}: it is a folder (choose another output name)")
    if not overwrite and target.exists():
        raise OutputExistsError(f"{target} exists already: choose another name, or pass --overwrite to replace it")
    sweep_once(folder)
    remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_file_prefix(target), suffix=TEMP_SUFFIX, dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; outputs get the usual permissions
    return tmp


@contextlib.contextmanager
def atomic_outputs(paths: Sequence[str | os.PathLike[str]], *, overwrite: bool = False) -> Iterator[list[Path]]:
    """Yield a temporary path next to each of ``paths``; when the block succeeds they are published in order
    (:func:`publish`), else removed. When one cannot be published those already published are removed again:
    the files are written together or not at all. Unless ``overwrite`` an existing file is refused on entry."""
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    published: list[tuple[Path, tuple[int, int]]] = []
    try:
        for target in targets:
            temps.append(_temporary_for(target, overwrite))
        yield temps
        for tmp, target in zip(temps, targets):
            stat = tmp.stat()
            publish(tmp, target, overwrite=overwrite)
            published.append((target, (stat.st_dev, stat.st_ino)))
    except BaseException:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        for target, identity in published:
            with contextlib.suppress(OSError):
                stat = target.stat()
                if (stat.st_dev, stat.st_ino) == identity:  # still the file this call wrote
                    target.unlink()
        raise


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is published onto ``path`` (:func:`publish`: never
    replacing a file unless ``overwrite``), on error removed. Unless ``overwrite`` an existing ``path`` is refused
    on entry, before the caller's work."""
    with atomic_outputs([path], overwrite=overwrite) as (tmp,):
        yield tmp
