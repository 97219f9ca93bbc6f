"""Image sets for calibration and validation: folders, flat folders, .npy/.npz tensors.

Torch-free (Pillow + numpy): the same code reads images on a build machine and on a device.

Every set selects its images deterministically (``size`` and ``seed`` pick the same files
whatever order the filesystem lists them in), iterates in batches without loading the whole
set, and has a content fingerprint used as a cache key (calibration results, build stages).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.data.preprocess import PreprocessSpec
from edgeres.errors import EdgeresError

FINGERPRINT_VERSION = "edgeres-imageset-v1"
LABELS_FILE = "labels.txt"
MAX_NAMED = 5
# npz keys tried, in order, for the images and the labels
X_KEYS = ("x", "images", "inputs", "data", "arr_0")
Y_KEYS = ("y", "labels", "targets", "arr_1")


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


def _decode_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


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


def _check_size(size: int | None) -> None:
    if size is not None and (isinstance(size, bool) or int(size) != size or size < 1):
        raise EdgeresError(f"set size must be a positive integer, got {size!r}")


def _named(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" (+{len(names) - MAX_NAMED} more)" if len(names) > MAX_NAMED else "")


def _warn_skipped(root: Path, names: Sequence[str], why: str) -> None:
    if names:
        warnings.warn(f"edgeres: skipped {len(names)} {why} in {root}: {_named(names)}",
                      SkippedFilesWarning, stacklevel=4)


# ----------------------------------------------------------------------------- image folders


def probe_image(path: Path) -> bool:
    """Whether Pillow recognizes ``path`` as an image (reads the header, and for PNG the chunk
    checksums; pixel data is decoded later, batch by batch)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            if width < 1 or height < 1:
                return False
            image.verify()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not a usable image"
        return False


def load_image(path: str | os.PathLike[str]) -> Any:
    """Decode one image file fully (a Pillow image in its own mode; the spec converts it)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image


def _is_hidden(name: str) -> bool:
    return name.startswith((".", "__"))


def _files_under(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not _is_hidden(d)]
        out += [Path(dirpath) / f for f in filenames if not _is_hidden(f)]
    return out


def _read_labels_txt(path: Path) -> tuple[dict[str, int] | None, list[str] | None, list[str] | None]:
    """labels.txt, in one of two forms:

    * one class per line, in label order: ``FOLDER [display name]`` -> (None, folders, names)
    * one image per line: ``relative/path.jpg LABEL`` (LABEL an integer) -> (mapping, None, None)
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EdgeresError(f"{path} is not UTF-8 text: save it as UTF-8, one class folder per line") from None
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    if not lines:
        raise EdgeresError(f"{path} is empty: write one class folder per line, or 'FILE LABEL' per image")
    pairs = [line.replace(",", " ").replace("\t", " ").rsplit(None, 1) for line in lines]
    if all(len(p) == 2 and p[1].lstrip("-").isdigit() and (path.parent / p[0]).is_file() for p in pairs):
        mapping = {Path(p[0]).as_posix(): int(p[1]) for p in pairs}
        if min(mapping.values()) < 0:
            raise EdgeresError(f"{path}: labels must be non-negative integers")
        return mapping, None, None
    folders, names = [], []
    for line in lines:
        parts = line.split(None, 1)
        folders.append(parts[0])
        names.append(parts[1].strip() if len(parts) > 1 else parts[0])
    duplicates = sorted({f for f in folders if folders.count(f) > 1})
    if duplicates:
        raise EdgeresError(f"{path}: class folders listed twice: {_named(duplicates)}")
    return None, folders, names


class FolderSet(ImageSet):
    """Images under a folder: ImageNet layout (``root/<class>/<image>``) or flat (unlabeled).

    Labels come from the sorted class-folder names, or from ``labels.txt`` at the root: either
    one class folder per line (line number = label, optional display name after the folder),
    or ``relative/path.jpg LABEL`` per image (a flat folder with labels, like ImageNet's val).
    Hidden files and folders (``.name``) are ignored; anything else that is not a readable
    image is skipped and counted in one warning.
    """

    def __init__(self, root: str | os.PathLike[str], *, size: int | None = None, seed: int = 0,
                 preprocess: PreprocessSpec | None = None, require_labels: bool = False,
                 name: str | None = None, source: str | None = None) -> None:
        root = Path(root).expanduser()
        _check_size(size)
        if not root.exists():
            raise EdgeresError(f"image folder {root} does not exist")
        if not root.is_dir():
            raise EdgeresError(f"{root} is not a folder (image sets are folders, .npy or .npz files)")
        self.root = root
        rel_paths, labels, classes, layout = self._discover(root)
        if require_labels and labels is None:
            raise EdgeresError(f"{root} has no labels: a labeled set needs one sub-folder per class "
                               f"(root/<class>/<image>) or a {LABELS_FILE} mapping")
        if require_labels and classes is not None and len(classes) < 2:
            raise EdgeresError(f"{root} has only one class folder ({classes[0] if classes else 'none'}): "
                               "a labeled set needs at least two classes")
        self.layout = layout
        order = select_indices(len(rel_paths), size, seed)
        chosen: list[int] = []
        bad: list[int] = []
        for i in order if order is not None else range(len(rel_paths)):
            if size is not None and len(chosen) >= size:
                break
            (chosen if probe_image(root / rel_paths[i]) else bad).append(int(i))
        chosen.sort()
        self.skipped = sorted(rel_paths[i] for i in bad)
        self._skipped_late: list[str] = []
        if not chosen:
            detail = f" ({len(self.skipped)} unreadable or non-image files: {_named(self.skipped)})" if bad else ""
            raise EdgeresError(f"no usable images in {root}{detail}")
        _warn_skipped(root, self.skipped, "unreadable or non-image files")
        self.files = [rel_paths[i] for i in chosen]
        label_array = None if labels is None else np.asarray([labels[i] for i in chosen], dtype=np.int64)
        spec = preprocess or PreprocessSpec()
        n = len(self.files)
        if name is None:
            what = f"{n} images" + (f", {len(classes)} classes" if classes is not None else "")
            name = f"{root.name} ({what})"
        super().__init__(name=name, source=source or str(root), preprocess=spec, classes=classes,
                         labels=label_array, requested_size=size, seed=seed)

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.layout

    @staticmethod
    def _discover(root: Path) -> tuple[list[str], list[int] | None, list[str] | None, str]:
        """(sorted relative paths, labels or None, class names or None, layout)."""
        entries = sorted(e for e in os.listdir(root) if not _is_hidden(e))
        subdirs = [e for e in entries if (root / e).is_dir()]
        loose = [e for e in entries if (root / e).is_file() and e != LABELS_FILE]
        labels_txt = root / LABELS_FILE
        mapping, folders, names = _read_labels_txt(labels_txt) if labels_txt.is_file() else (None, None, None)

        if mapping is not None:  # per-image labels: every listed file, wherever it is
            rel = sorted(mapping)
            unlisted = [e for e in loose if e not in mapping]
            _warn_skipped(root, unlisted, f"files not listed in {LABELS_FILE}")
            n_classes = max(mapping.values()) + 1
            return rel, [mapping[r] for r in rel], [str(i) for i in range(n_classes)], "labels-file"

        if not subdirs:  # flat folder: unlabeled
            if folders is not None:
                raise EdgeresError(f"{labels_txt} lists class folders, but {root} has no sub-folders")
            return loose, None, None, "flat"

        if folders is not None:
            missing = [f for f in folders if not (root / f).is_dir()]
            if missing:
                raise EdgeresError(f"{labels_txt} lists class folders that are not in {root}: {_named(missing)}")
            extra = [d for d in subdirs if d not in folders]
            if extra:
                raise EdgeresError(f"{root} has class folders that {labels_txt} does not list: {_named(extra)}")
            classes, class_dirs = names, folders
        else:
            classes, class_dirs = list(subdirs), list(subdirs)
        _warn_skipped(root, loose, "files outside the class folders")
        items: list[tuple[str, int]] = []
        for label, folder in enumerate(class_dirs):
            for path in _files_under(root / folder):
                items.append((path.relative_to(root).as_posix(), label))
        items.sort()
        return [r for r, _ in items], [lab for _, lab in items], list(classes or []), "imagenet"

    def __len__(self) -> int:
        return len(self.files)

    @property
    def paths(self) -> list[Path]:
        return [self.root / f for f in self.files]

    def _decode(self, rel: str) -> np.ndarray | None:
        try:
            return self.preprocess(load_image(self.root / rel))
        except Exception:  # noqa: BLE001 - a file that passed the header check but does not decode
            return None

    def _load(self, indices: range) -> tuple[np.ndarray, np.ndarray]:
        names = [self.files[i] for i in indices]
        if len(names) > 1 and _decode_threads() > 1:
            with ThreadPoolExecutor(_decode_threads()) as pool:  # Pillow decodes outside the GIL
                arrays = list(pool.map(self._decode, names))
        else:
            arrays = [self._decode(n) for n in names]
        keep = np.asarray([a is not None for a in arrays], dtype=bool)
        bad = [n for n, a in zip(names, arrays) if a is None and n not in self._skipped_late]
        if bad:
            self._skipped_late += bad
            warnings.warn(f"edgeres: skipped {len(bad)} images of {self.root} that do not decode: {_named(bad)}",
                          SkippedFilesWarning, stacklevel=3)
        good = [a for a in arrays if a is not None]
        return (np.stack(good) if good else self._empty()), keep

    def _hash_contents(self, digest: Any) -> None:
        labels = self.labels if self.labels is not None else [None] * len(self.files)
        for rel, label in zip(self.files, labels):
            file_digest = hashlib.sha256()
            with open(self.root / rel, "rb") as f:
                while block := f.read(1 << 20):
                    file_digest.update(block)
            digest.update(f"{rel}\0{'' if label is None else int(label)}\0".encode())
            digest.update(file_digest.digest())

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"path": str(self.root), "skipped": len(self.skipped) + len(self._skipped_late)}


# ----------------------------------------------------------------------------- tensors


class ArraySet(ImageSet):
    """Preprocessed tensors from a ``.npy`` (images only) or ``.npz`` (images and labels) file.

    Images are (N,C,H,W) float32 (N,H,W,C with an NHWC spec), already preprocessed: fed as they are.
    ``.npy`` files are memory-mapped; an ``.npz`` member is read once, on open.
    A ``.npz`` holds the images under ``x`` (or ``images``, ``inputs``, ``data``, ``arr_0``),
    labels under ``y`` (or ``labels``, ``targets``, ``arr_1``) and, optionally, ``classes``.
    """

    def __init__(self, path: str | os.PathLike[str], *, size: int | None = None, seed: int = 0,
                 preprocess: PreprocessSpec | None = None, require_labels: bool = False,
                 name: str | None = None, source: str | None = None) -> None:
        path = Path(path).expanduser()
        _check_size(size)
        if not path.is_file():
            raise EdgeresError(f"array file {path} does not exist")
        self.path = path
        x, y, classes = self._read(path)
        if x.ndim != 4:
            raise EdgeresError(f"{path}: images must be a 4-D (N,C,H,W) array, got shape {tuple(x.shape)}")
        if not np.issubdtype(x.dtype, np.floating):
            raise EdgeresError(f"{path}: images are {x.dtype}, but .npy/.npz sets hold preprocessed float32 "
                               "tensors (for raw images, use a folder of image files)")
        if x.shape[0] == 0:
            raise EdgeresError(f"no images in {path} (the array is empty)")
        if y is not None and (y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer)
                              or (y < 0).any()):
            raise EdgeresError(f"{path}: labels must be {len(x)} non-negative integers (one per image), "
                               f"got {y.dtype} array of shape {tuple(y.shape)}")
        if require_labels and y is None:
            raise EdgeresError(f"{path} has no labels: save them in the .npz under 'y' or 'labels'")
        if y is not None and classes is None:
            classes = [str(i) for i in range(int(y.max()) + 1)]
        if require_labels and classes is not None and len(classes) < 2:
            raise EdgeresError(f"{path} has only one class: a labeled set needs at least two")
        spec = self._spec_for(path, x.shape, preprocess)
        order = select_indices(len(x), size, seed)
        self.indices = np.arange(len(x)) if order is None else np.sort(order[:size])
        self._x = x
        labels = None if y is None else np.asarray(y, dtype=np.int64)[self.indices]
        n = len(self.indices)
        super().__init__(name=name or f"{path.name} ({n} tensors)", source=source or str(path), preprocess=spec,
                         classes=classes, labels=labels, requested_size=size, seed=seed)

    kind = "arrays"

    @staticmethod
    def _read(path: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
        try:
            if path.suffix.lower() == ".npy":
                return np.load(path, mmap_mode="r", allow_pickle=False), None, None
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                xk = next((k for k in X_KEYS if k in keys), None)
                if xk is None:
                    four_d = [k for k in keys if archive[k].ndim == 4]
                    if len(four_d) != 1:
                        raise EdgeresError(f"{path}: no image array found; store the images under 'x' "
                                           f"(keys found: {', '.join(keys) or 'none'})")
                    xk = four_d[0]
                yk = next((k for k in Y_KEYS if k in keys and k != xk), None)
                x = archive[xk]
                y = archive[yk] if yk else None
                classes = [str(c) for c in archive["classes"].tolist()] if "classes" in keys else None
                return x, y, classes
        except EdgeresError:
            raise
        except Exception as exc:  # noqa: BLE001 - corrupt, truncated, pickled...
            raise EdgeresError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                               ) from None

    @staticmethod
    def _spec_for(path: Path, shape: tuple[int, ...], spec: PreprocessSpec | None) -> PreprocessSpec:
        _, c, h, w = shape
        if spec is None:
            if h != w:
                raise EdgeresError(f"{path}: images are {h}x{w}; edgeres models take square inputs (NCHW)")
            # the tensors are fed as they are: record the size and an identity normalization
            return PreprocessSpec(resize=h, crop=h, mean=(0.0,) * c, std=(1.0,) * c, extra={"precomputed": True})
        expected = spec.input_shape(shape[0], shape[3] if spec.layout == "NHWC" else c)
        if tuple(shape) != tuple(expected):
            raise EdgeresError(f"{path}: tensors have shape {tuple(shape[1:])}, but the preprocessing expects "
                               f"{tuple(expected[1:])} ({spec.layout}, crop {spec.crop})")
        return spec

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, indices: range) -> tuple[np.ndarray, np.ndarray]:
        rows = self.indices[indices.start:indices.stop]
        x = np.ascontiguousarray(self._x[rows], dtype=np.float32)
        return x, np.ones(len(rows), dtype=bool)

    def _hash_contents(self, digest: Any) -> None:
        digest.update(f"{self._x.shape[1:]}\0".encode())
        for start in range(0, len(self.indices), 256):
            rows = self.indices[start:start + 256]
            digest.update(np.ascontiguousarray(self._x[rows], dtype=np.float32).tobytes())
        if self.labels is not None:
            digest.update(self.labels.astype("<i8").tobytes())
        digest.update(self.indices.astype("<i8").tobytes())

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"path": str(self.path)}
