"""Progress of an upscaling batch on stderr: bars redrawn in place on a terminal (rich), plain lines otherwise,
so that a log file (``gldfn upscale ... 2> log``, a batch job, CI) keeps one line per file and per tile.

Both report the same events: a file starts, a tile of it is done, a note or an error about it, the file is done.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress


class BatchProgress(Protocol):
    def start_file(self, name: str) -> None: ...

    def tile(self, done: int, total: int) -> None: ...

    def message(self, line: str) -> None:
        """A note or an error line, printed as it is."""

    def end_file(self) -> None: ...


class LineProgress:
    """One line per event: ``[2/5] photo.png``, ``[2/5] photo.png: tile 3/16``, ``[2/5] photo.png: done in 1.2 s``.
    A file of one tile gets no tile line."""

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self.total, self.stream = total, stream
        self.index, self.name, self.started = 0, "", 0.0
        self._print(f"{label}: {total} image{'s' if total != 1 else ''}")

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def start_file(self, name: str) -> None:
        self.index, self.name, self.started = self.index + 1, name, time.perf_counter()
        self._print(f"[{self.index}/{self.total}] {name}")

    def tile(self, done: int, total: int) -> None:
        if total > 1:
            self._print(f"[{self.index}/{self.total}] {self.name}: tile {done}/{total}")

    def message(self, line: str) -> None:
        self._print(line)

    def end_file(self) -> None:
        self._print(f"[{self.index}/{self.total}] {self.name}: done in {time.perf_counter() - self.started:.1f} s")


class BarProgress:
    """rich's bars: the files, and the tiles of an image of several tiles."""

    def __init__(self, progress: Progress, label: str, total: int) -> None:
        self.progress = progress
        self.files = progress.add_task(label, total=total)
        self.tiles = progress.add_task("tiles", total=1, visible=False)
        self.name = ""

    def start_file(self, name: str) -> None:
        self.name = name

    def tile(self, done: int, total: int) -> None:
        self.progress.update(self.tiles, completed=done, total=total, visible=total > 1,
                             description=f"  {self.name}: tiles")

    def message(self, line: str) -> None:
        self.progress.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def end_file(self) -> None:
        self.progress.update(self.tiles, visible=False)
        self.progress.advance(self.files)


@contextmanager
def batch_progress(label: str, total: int, stream: TextIO | None = None) -> Iterator[BatchProgress]:
    """Bars when ``stream`` (default: stderr) is a terminal, else plain lines."""
    stream = stream if stream is not None else sys.stderr
    if not stream.isatty():
        yield LineProgress(label, total, stream)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=stream)) as progress:
        yield BarProgress(progress, label, total)
