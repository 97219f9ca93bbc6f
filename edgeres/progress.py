"""Progress for long work, on stderr so that ``--json`` output stays clean."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A one-line bar on a terminal; a few plain lines (every 25%) elsewhere, as in CI logs."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = max(int(total), 1)
        self.desc = desc
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.start = time.perf_counter()
        self.tty = self.stream.isatty()
        self._next_plain = 0.25

    def __enter__(self) -> Progress:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        if not self.enabled:
            return
        fraction = self.done / self.total
        if self.tty:
            bar = "#" * int(fraction * 24)
            self.stream.write(f"\r{self.desc} [{bar:<24}] {self.done}/{self.total} {self.elapsed():.1f}s")
            self.stream.flush()
        elif fraction >= self._next_plain and self.done < self.total:
            self.stream.write(f"{self.desc}: {self.done}/{self.total} ({self.elapsed():.1f}s)\n")
            self._next_plain += 0.25

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def close(self) -> None:
        if self.enabled and self.done:
            end = "\n" if self.tty else ""
            self.stream.write(f"{end}{self.desc}: {self.done}/{self.total} done in {self.elapsed():.1f}s\n")
            self.stream.flush()
        self.enabled = False
