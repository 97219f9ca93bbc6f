"""Progress for long work, always on stderr, so that ``--json`` output stays one document.

One style for every step: ``desc n/N`` with the elapsed time. On a terminal it is a rich bar (rich
comes with NNCF, whose "Statistics collection" bars look the same; it is pure Python, so the device
side has it too); anywhere else (CI logs, pipes, files) it is a few plain lines, every 25 %, with no
control codes. Without rich a terminal gets the plain lines as well.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_LIVE: dict[int, list[Any]] = {}  # id(stream) -> [the rich Progress drawing on it, how many bars use it]


def _rich_bar(desc: str, total: int, stream: TextIO) -> tuple[Any, Any] | None:
    """A rich bar on ``stream`` (a new line in the display already there, when bars nest), or None
    when rich is missing."""
    try:
        from rich.console import Console
        from rich.errors import LiveError
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress
    except ImportError:
        return None
    live = _LIVE.get(id(stream))
    if live is None:
        bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           console=Console(file=stream), transient=True)
        try:
            bar.start()
        except LiveError:  # someone else's display is live on this console
            return None
        live = _LIVE[id(stream)] = [bar, 0]
    live[1] += 1
    return live[0], live[0].add_task(desc, total=total)


def _rich_done(stream: TextIO, task: Any) -> None:
    live = _LIVE[id(stream)]
    live[0].remove_task(task)
    live[1] -= 1
    if not live[1]:
        live[0].stop()  # transient: the bars go; the "done" lines written after stay
        del _LIVE[id(stream)]


class Progress:
    """``with Progress(len(items), "validate fp32") as bar: ... bar.update()``; see the module docstring."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = max(int(total), 1)
        self.desc = desc
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.start = time.perf_counter()
        self._next_plain = 0.25
        self._rich = _rich_bar(desc, self.total, self.stream) if enabled and self.stream.isatty() else None

    def __enter__(self) -> Progress:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        if not self.enabled:
            return
        if self._rich is not None:
            bar, task = self._rich
            bar.update(task, completed=self.done)
        elif self.done / self.total >= self._next_plain and self.done < self.total:
            self.stream.write(f"{self.desc}: {self.done}/{self.total} ({self.elapsed():.1f}s)\n")
            self.stream.flush()
            while self._next_plain <= self.done / self.total:
                self._next_plain += 0.25

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def close(self) -> None:
        text = f"{self.desc}: {self.done}/{self.total} done in {self.elapsed():.1f}s" if self.enabled and self.done else ""
        if self._rich is not None:
            bar, task = self._rich
            if text:
                bar.console.print(text, markup=False, highlight=False)  # above the bars while they last
            _rich_done(self.stream, task)
            self._rich = None
        elif text:
            self.stream.write(text + "\n")
            self.stream.flush()
        self.enabled = False


@contextmanager
def others_on_stderr() -> Iterator[None]:
    """Send what a library prints (NNCF's progress bars, OpenVINO's C++ logs) to stderr while it runs,
    so that stdout holds only edgeres' result, with or without ``--json``. Both levels: Python's
    ``sys.stdout`` and file descriptor 1, which C++ code writes to whatever ``sys.stdout`` is."""
    sys.stdout.flush()
    try:
        saved_fd: int | None = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no file descriptor 1 or 2: Python level only
        saved_fd = None
    saved_python = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = saved_python
        saved_python.flush()  # what a library wrote to the old stdout object belongs to stderr too
        sys.stderr.flush()
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
