"""Image folders as image sets: ``root/<class>/<image>`` (labels from the folder names or a
``labels.txt``) or a flat folder of unlabeled images. Torch-free (Pillow + numpy)."""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.data.preprocess import PreprocessSpec
from edgeres.data.sets import (
    ImageSet,
    SkippedFilesWarning,
    check_size,
    first_names,
    select_indices,
    warn_skipped,
)
from edgeres.errors import EdgeresError

LABELS_FILE = "labels.txt"


def decode_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


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
        text = path.read_text(encoding="utf-8-sig")  # a BOM is not part of the first line
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
        raise EdgeresError(f"{path}: class folders listed twice: {first_names(duplicates)}")
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
        check_size(size)
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
            detail = f" ({len(self.skipped)} unreadable or non-image files: {first_names(self.skipped)})" if bad else ""
            raise EdgeresError(f"no usable images in {root}{detail}")
        warn_skipped(root, self.skipped, "unreadable or non-image file")
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
            warn_skipped(root, unlisted, "file", f"not listed in {LABELS_FILE}")
            n_classes = max(mapping.values()) + 1
            return rel, [mapping[r] for r in rel], [str(i) for i in range(n_classes)], "labels-file"

        if not subdirs:  # flat folder: unlabeled
            if folders is not None:
                raise EdgeresError(f"{labels_txt} lists class folders, but {root} has no sub-folders")
            return loose, None, None, "flat"

        if folders is not None:
            missing = [f for f in folders if not (root / f).is_dir()]
            if missing:
                raise EdgeresError(f"{labels_txt} lists class folders that are not in {root}: {first_names(missing)}")
            extra = [d for d in subdirs if d not in folders]
            if extra:
                raise EdgeresError(f"{root} has class folders that {labels_txt} does not list: {first_names(extra)}")
            classes, class_dirs = names, folders
        else:
            classes, class_dirs = list(subdirs), list(subdirs)
        warn_skipped(root, loose, "file", "outside the class folders")
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
        if len(names) > 1 and decode_threads() > 1:
            with ThreadPoolExecutor(decode_threads()) as pool:  # Pillow decodes outside the GIL
                arrays = list(pool.map(self._decode, names))
        else:
            arrays = [self._decode(n) for n in names]
        keep = np.asarray([a is not None for a in arrays], dtype=bool)
        bad = [n for n, a in zip(names, arrays) if a is None and n not in self._skipped_late]
        if bad:
            self._skipped_late += bad
            warnings.warn(f"edgeres: skipped {len(bad)} images of {self.root} that do not decode: {first_names(bad)}",
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
