"""Image sets for calibration and validation: the ``ImageSet`` base and deterministic selection.

The two kinds: ``folders.FolderSet`` (image folders, flat or one folder per class) and
``arrays.ArraySet`` (.npy/.npz tensors).

Torch-free (Pillow + numpy): the same code reads images on a build machine and on a device.

Every set selects its images deterministically (``size`` and ``seed`` pick the same files
whatever order the filesystem lists them in), iterates in batches without loading the whole
set, and has a content fingerprint used as a cache key (calibration results, build stages).
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.data.preprocess import PreprocessSpec
from edgeres.errors import EdgeresError
from edgeres.table import counted

FINGERPRINT_VERSION = "edgeres-imageset-v1"
MAX_NAMED = 5


class SkippedFilesWarning(UserWarning):
    """Some files of an image set could not be read as images and were left out."""


def _install_one_line_display() -> None:
    """Show a SkippedFilesWarning as its message alone, on one line (not file:line + source).
    Other warnings, filters and ``warnings.catch_warnings``/``pytest.warns`` are untouched."""
    original = warnings.showwarning
    if getattr(original, "_edgeres_one_line", False):
        return

    def showwarning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                    line: str | None = None) -> None:
        if isinstance(category, type) and issubclass(category, SkippedFilesWarning):
            try:
                (file or sys.stderr).write(f"{message}\n")
            except (OSError, AttributeError):
                pass
            return
        original(message, category, filename, lineno, file, line)

    showwarning._edgeres_one_line = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


_install_one_line_display()


class ImageSet:
    """A selected, ordered set of images (or preprocessed tensors) and, maybe, their labels.

    Attributes: ``name`` (human description), ``preprocess`` (the spec images are decoded
    with, or the one the tensors were made with), ``classes`` (class names by label index, or
    None), ``has_labels``, ``labels`` (int64 array of every selected item's label, or None).
    """

    kind = "abstract"

    def __init__(self, *, name: str, source: str, preprocess: PreprocessSpec, classes: list[str] | None,
                 labels: np.ndarray | None, requested_size: int | None, seed: int) -> None:
        self.name = name
        self.source = source
        self.preprocess = preprocess
        self.classes = classes
        self.labels = labels
        self.requested_size = requested_size
        self.seed = seed
        self.spec_path: Path | None = None
        self._fingerprint: str | None = None

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def __len__(self) -> int:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def batches(self, batch_size: int = 32, progress: str | None = None
                ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yield ``(images, labels)``: images (N,C,H,W) float32 (the spec's layout), labels int64 or None."""
        if batch_size < 1:
            raise EdgeresError(f"batch size must be at least 1, got {batch_size}")
        from edgeres.progress import Progress

        bar = Progress(len(self), progress or "", enabled=bool(progress))
        try:
            for start in range(0, len(self), batch_size):
                stop = min(start + batch_size, len(self))
                x, keep = self._load(range(start, stop))
                bar.update(stop - start)
                if not len(x):
                    continue
                y = None if self.labels is None else self.labels[start:stop][keep]
                yield x, y
        finally:
            bar.close()

    def head(self, size: int) -> np.ndarray:
        """The first ``size`` preprocessed inputs, in ``batches`` order (a validation slice whose
        FP32 reference logits were computed in that order)."""
        parts, count = [], 0
        for images, _labels in self.batches(64):
            parts.append(images)
            count += len(images)
            if count >= size:
                break
        return np.concatenate(parts)[:size]

    def load_all(self, batch_size: int = 64, progress: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Every image as one array (and the labels): only for sets that fit in memory."""
        xs, ys = [], []
        for x, y in self.batches(batch_size, progress=progress):
            xs.append(x)
            if y is not None:
                ys.append(y)
        x_all = np.concatenate(xs) if xs else self._empty()
        if self.labels is None:
            return x_all, None
        return x_all, (np.concatenate(ys) if ys else np.zeros(0, np.int64))

    def _empty(self) -> np.ndarray:
        shape = tuple(int(d) for d in self.preprocess.input_shape(1)[1:])
        return np.zeros((0, *shape), np.float32)

    def _load(self, indices: range) -> tuple[np.ndarray, np.ndarray]:
        """Items ``indices`` as a float32 array, and a bool mask of the ones that loaded."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """sha256 of the selected contents, their names and labels, and the preprocessing."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            digest.update(FINGERPRINT_VERSION.encode() + b"\0")
            digest.update(json.dumps(self.preprocess.to_dict(), sort_keys=True).encode() + b"\0")
            digest.update(json.dumps(self.classes).encode() + b"\0")
            self._hash_contents(digest)
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def _hash_contents(self, digest: Any) -> None:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What this set is, for reports and manifests."""
        return {
            "name": self.name,
            "source": self.source,
            "kind": self.kind,
            "spec": str(self.spec_path) if self.spec_path else None,
            "size": len(self),
            "requested_size": self.requested_size,
            "seed": self.seed,
            "fingerprint": self.fingerprint(),
            "preprocess": self.preprocess.to_dict(),
            "labels": self.has_labels,
            "num_classes": len(self.classes) if self.classes is not None else None,
            "classes": self.classes,
        }


# ----------------------------------------------------------------------------- selection


def select_indices(n: int, size: int | None, seed: int) -> np.ndarray | None:
    """The order in which to consider ``n`` sorted items: None for "all, in sorted order",
    else a seeded permutation (numpy PCG64), whose first ``size`` usable items are selected."""
    if size is None or size >= n:
        return None
    return np.random.default_rng(seed).permutation(n)


def check_size(size: int | None) -> None:
    if size is not None and (isinstance(size, bool) or int(size) != size or size < 1):
        raise EdgeresError(f"set size must be a positive integer, got {size!r}")


def first_names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" (+{len(names) - MAX_NAMED} more)" if len(names) > MAX_NAMED else "")


def warn_skipped(root: Path, names: Sequence[str], noun: str, where: str = "") -> None:
    """'skipped 1 file outside the class folders in ROOT: a.txt'."""
    if names:
        warnings.warn(f"edgeres: skipped {counted(len(names), noun)}{f' {where}' if where else ''} in {root}: "
                      f"{first_names(names)}", SkippedFilesWarning, stacklevel=4)
