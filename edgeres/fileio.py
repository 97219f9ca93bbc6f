"""Atomic writes and content hashes: no artifact is ever half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# (device, inode, size, mtime_ns) -> digest: a build hashes the same 100 MB ONNX and IR files for
# every stage key and artifact check (42 times in one ResNet-50 intel-cpu build); a file that
# changes gets a new mtime or size, and a replaced one (atomic rename) a new inode. Only large files
# are remembered (small ones hash in microseconds), and only for the life of this process.
_DIGESTS: dict[tuple[int, int, int, int], str] = {}
_REMEMBER_FROM = 8 << 20


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    stat = os.stat(path)
    key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key in _DIGESTS:
        return _DIGESTS[key]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    if stat.st_size >= _REMEMBER_FROM:
        _DIGESTS[key] = digest.hexdigest()
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    """Hash of a JSON-serialisable value, independent of dict order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


TEMP_SUFFIX = ".tmp"
# ``.NAME.<8 random characters>.tmp``: what ``temp_dir_beside`` (tempfile.mkdtemp) makes
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX))


@contextlib.contextmanager
def temp_dir_beside(final: Path) -> Iterator[Path]:
    """A new, empty temporary folder next to ``final`` (same filesystem, so renames are atomic),
    named so that ``sweep_temps`` recognises it (``.NAME.XXXXXXXX.tmp``), and removed on the
    way out whatever happens: an error, Ctrl-C, SIGTERM or SIGHUP. Only SIGKILL leaves it."""
    from edgeres.guard import signals_deferred

    tmp: Path | None = None
    try:
        with signals_deferred():  # a signal between creating it and noting it would orphan the folder
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent))
        yield tmp
    finally:
        if tmp is not None:
            with signals_deferred():
                shutil.rmtree(tmp, ignore_errors=True)


def sweep_temps(folder: Path) -> list[Path]:
    """Remove the temporary folders that a killed run (SIGKILL, the OOM killer, a power cut)
    left anywhere under ``folder``; returns what was removed. Only call it while holding
    ``folder``'s build lock: then no live writer owns any of them."""
    swept = []
    for root, dirs, _files in os.walk(folder):
        for name in list(dirs):
            if _TEMP_NAME.fullmatch(name):
                shutil.rmtree(Path(root) / name, ignore_errors=True)
                swept.append(Path(root) / name)
                dirs.remove(name)
    return swept


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    Works for files and directories alike: whatever the caller creates at the
    temporary path replaces ``path`` in one rename, or is removed on error.
    """
    from edgeres.guard import signals_deferred

    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    with temp_dir_beside(final) as tmp:
        target = tmp / final.name
        try:
            yield target
            if not target.exists():
                raise FileNotFoundError(f"nothing was written to {target}")
            with signals_deferred():  # the old result goes only if the new one takes its place
                if final.is_dir() and not final.is_symlink():
                    shutil.rmtree(final)
                os.replace(target, final)
        except OSError as exc:
            if exc.filename is None or str(exc.filename).startswith(str(tmp)):
                exc.filename = str(final)  # name the file the user asked for, not our temporary one
            raise


def check_folder_path(folder: Path) -> None:
    """Refuse an output folder that is a file, before any work is done for it."""
    from edgeres.errors import EdgeresError

    if folder.exists() and not folder.is_dir():
        raise EdgeresError(f"{folder} is a file, not a folder: choose another --out, or move the file away")


def check_replaceable(folder: Path, marker: str, what: str) -> None:
    """Refuse to replace an existing folder that is not an edgeres ``what`` (it lacks ``marker``):
    ``atomic_path`` replaces whole folders, and a user's own files must never go with them."""
    from edgeres.errors import EdgeresError

    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / marker).is_file())):
        raise EdgeresError(f"{folder} exists and is not an edgeres {what}: choose another output folder, "
                           "or remove it yourself")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | os.PathLike[str], value: Any) -> Path:
    return write_text_atomic(path, json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_json(path: str | os.PathLike[str], what: str, fix: str = "", shape: Any = None) -> Any:
    """``read_json`` for a file a user handed us: unreadable, damaged or (with ``shape``, a model
    from ``edgeres.schemas``) of the wrong shape is an ``EdgeresError`` naming ``what`` it is,
    with ``fix`` (how to repair it) appended."""
    from edgeres import schemas
    from edgeres.errors import EdgeresError

    hint = f"; {fix}" if fix else ""
    try:
        value = read_json(path)
    except OSError as exc:
        raise EdgeresError(f"cannot read {what} {path}: {exc.strerror or exc}{hint}") from None
    except ValueError as exc:
        raise EdgeresError(f"{what} {path} is not valid JSON ({exc}){hint}") from None
    if not isinstance(value, dict):
        raise EdgeresError(f"{what} {path} holds a JSON {type(value).__name__}, not an object{hint}")
    return schemas.check(shape, value, f"{what} {path}", fix) if shape is not None else value


CACHE_ENV = "EDGERES_CACHE"


def cache_dir() -> Path:
    """Where edgeres keeps demo data, trained demo models, calibration and compiled-model caches:
    ``$EDGERES_CACHE``, else ``~/.cache/edgeres``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgeres"


def now_utc() -> str:
    """The one timestamp format edgeres writes into manifests and reports: ISO 8601, UTC, seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
