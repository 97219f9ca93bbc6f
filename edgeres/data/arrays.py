""".npy / .npz tensors as image sets: images already preprocessed (N, C, H, W), labels optional."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.data.preprocess import PreprocessSpec
from edgeres.data.sets import ImageSet, check_size, select_indices
from edgeres.errors import EdgeresError

# npz keys tried, in order, for the images and the labels
X_KEYS = ("x", "images", "inputs", "data", "arr_0")
Y_KEYS = ("y", "labels", "targets", "arr_1")


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
        check_size(size)
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
        self._check_finite(path)
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

    def _check_finite(self, path: Path) -> None:
        """NaN or infinity in the tensors (or values past float32's range) would reach a calibrator
        or a runtime and fail there without naming the file; refuse them here."""
        bad = total = 0
        with np.errstate(over="ignore", invalid="ignore"):  # a float64 past float32's range becomes inf: counted
            for start in range(0, len(self.indices), 256):
                chunk = self._load(range(start, start + 256))[0]
                bad += int(chunk.size - np.count_nonzero(np.isfinite(chunk)))
                total += chunk.size
        if bad:
            raise EdgeresError(f"{path}: {bad:,} of {total:,} values in the {len(self.indices):,} images used are NaN "
                               "or infinite (or beyond float32's range); fix or drop those images")

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
