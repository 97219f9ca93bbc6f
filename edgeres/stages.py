"""Resumable build stages: each is keyed by a hash of its inputs and recorded when done.

A stage whose record matches its key (and whose outputs still exist) is reused; one
that was interrupted has no record, so the next run redoes it. Outputs are written
atomically by the stages themselves, so an interrupt never leaves half a file.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from edgeres.errors import EdgeresError
from edgeres.fileio import check_folder_path, read_json, sha256_json, sweep_temps, write_json_atomic

RECORDS = ".stages"
LOCK = ".edgeres.lock"


def build_outputs(target: str) -> list[str]:
    """What a build for ``target`` writes at the top of its folder (see the README)."""
    return ["report.md", "report.json", "accuracy_latency.png", "bundle", "bundle.tar.gz", "onnx", target,
            f"kit-{target}", f"kit-{target}.tar.gz"]


@contextmanager
def exclusive(out_dir: Path, replaces: Sequence[str] = ()) -> Iterator[list[Path]]:
    """Refuse a second build into the same output directory while one runs, and a folder of the
    user's own files holding one of the names in ``replaces`` (what the build writes there).

    The lock file is opened without truncating it, so a refused build leaves the holder's
    record (its pid) intact. Holding the lock, any temporary folder left in ``out_dir`` is
    a killed run's: they are removed, and the block receives the list of what went.
    """
    check_folder_path(out_dir)
    theirs = [n for n in replaces if (out_dir / n).exists()] if not (out_dir / LOCK).exists() else []
    if theirs:
        raise EdgeresError(f"{out_dir} is not an edgeres build folder and holds {', '.join(theirs)}, which the build "
                           "would replace: choose another --out, or move them away")
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(fd, "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.read().strip()
            raise EdgeresError(f"another edgeres build is writing into {out_dir}{f' (pid {holder})' if holder else ''};"
                               " wait for it or choose another --out") from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield sweep_temps(out_dir)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class StageLog:
    """What each stage did (ran or reused) and how long it took, for the progress display."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    entries: list[dict[str, Any]] = field(default_factory=list)
    planned: int = 0  # how many stages the build expects: the N of "[n/N]"

    def _number(self, n: int) -> str:
        total = max(self.planned, n)
        return f"[{n:>{len(str(total))}}/{total}]"

    def starting(self, name: str) -> None:
        """A stage that runs (is not reused) says so when it starts: some take a minute."""
        self.stream.write(f"{self._number(len(self.entries) + 1)} {name} ...\n")
        self.stream.flush()

    def record(self, name: str, reused: bool, seconds: float) -> None:
        self.entries.append({"stage": name, "reused": reused, "seconds": round(seconds, 2)})
        state = "reused (inputs unchanged)" if reused else f"done in {seconds:.1f}s"
        self.stream.write(f"{self._number(len(self.entries))} {name:<28} {state}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        self.stream.write(f"     {text}\n")
        self.stream.flush()


class Stages:
    """Runs named stages in ``out_dir``, reusing any whose inputs (key) are unchanged."""

    def __init__(self, out_dir: Path, log: StageLog) -> None:
        self.out_dir = out_dir
        self.log = log
        (out_dir / RECORDS).mkdir(parents=True, exist_ok=True)

    def _record_path(self, name: str) -> Path:
        return self.out_dir / RECORDS / (name.replace("/", "--") + ".json")

    def run(self, name: str, key: dict[str, Any], fn: Callable[[], dict[str, Any]],
            outputs: Callable[[dict[str, Any]], list[Path]] | None = None, force: bool = False) -> dict[str, Any]:
        """Run ``fn`` (which returns a JSON-able result) unless a matching record exists.

        ``outputs`` lists the files a result refers to; a record whose files are gone
        is stale and the stage runs again. ``force`` runs it even so (``--rebench``).
        """
        digest = sha256_json(key)
        record_path = self._record_path(name)
        if record_path.is_file() and not force:
            try:
                record = read_json(record_path)
            except ValueError:
                record = {}
            if record.get("key") == digest and all(p.exists() for p in (outputs or (lambda _r: []))(record["result"])):
                self.log.record(name, reused=True, seconds=0.0)
                return dict(record["result"])
        self.log.starting(name)
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        write_json_atomic(record_path, {"stage": name, "key": digest, "inputs": key, "seconds": seconds,
                                        "result": result})
        self.log.record(name, reused=False, seconds=seconds)
        return result
