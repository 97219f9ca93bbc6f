"""Loading and running a bundle on the device. Torch-free: numpy, Pillow and the bundle's backend.

    with load_bundle("resnet50-intel-cpu-int8.tar.gz", target="intel-cpu") as bundle:
        runner = bundle.load_runner()
        for result in bundle.classify(["cat.jpg"], runner=runner, topk=5):
            print(result.image, result.top[0])
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeres.artifact import Artifact
from edgeres.backends.base import Runner
from edgeres.bundle.archive import safe_extract
from edgeres.bundle.manifest import MANIFEST, check_manifest, verify_files
from edgeres.data.preprocess import PreprocessSpec
from edgeres.errors import EdgeresError
from edgeres.fileio import load_json
from edgeres.validate.metrics import run_batch

if TYPE_CHECKING:
    from typing_extensions import Self

    from edgeres.targets import Target


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "probability": self.probability}


@dataclass
class Classification:
    image: str
    top: list[Prediction]

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "top": [p.to_dict() for p in self.top]}


@dataclass
class Bundle:
    """A verified bundle on disk (extracted to a temporary folder when it came as a ``.tar.gz``)."""

    root: Path
    manifest: dict[str, Any]
    source: Path
    _cleanup: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    # --- what it is ---------------------------------------------------------------------------
    @property
    def target(self) -> str:
        return str(self.manifest["target"]["name"])

    @property
    def backend(self) -> str:
        return str(self.manifest["backend"]["name"])

    @property
    def precision(self) -> str:
        return str(self.manifest["precision"])

    @property
    def labels(self) -> list[str] | None:
        labels = self.manifest.get("labels")
        return [str(x) for x in labels] if labels is not None else None

    @property
    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec.from_dict(self.manifest["input"]["preprocess"])

    @property
    def input_shape(self) -> list[int | str]:
        """The artifact's input shape; the batch dimension may be a name (dynamic)."""
        return list(self.manifest["input"].get("shape") or self.preprocess.input_shape("batch"))

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """One image's shape without the batch, e.g. (3, 224, 224), for ``measure_latency``."""
        c, h, w = (int(x) for x in self.input_shape[1:])
        return c, h, w

    def artifact(self) -> Artifact:
        return Artifact.load(self.root / self.manifest["artifact"]["path"])

    def describe(self) -> dict[str, Any]:
        m = self.manifest
        return {"bundle": str(self.source), "target": self.target, "backend": m["backend"],
                "precision": self.precision, "model": m.get("model"), "input": m["input"], "output": m["output"],
                "requirements": m.get("requirements"), "metrics": m.get("metrics")}

    # --- running ------------------------------------------------------------------------------
    def load_runner(self, **options: Any) -> Runner:
        """The bundle's artifact, loaded by its own backend (``get_backend(...).load``)."""
        from edgeres.backends import get_backend

        backend = get_backend(self.backend)
        artifact = self.artifact()
        return backend.load(artifact, **options)

    def classify(self, images: Sequence[str | os.PathLike[str] | Any], *, topk: int = 5,
                 runner: Runner | None = None, chunk: int = 16) -> list[Classification]:
        """Top-``topk`` labels and softmax probabilities for each image (a path or a PIL image),
        ``chunk`` images per call (split or padded to what the runner takes)."""
        if topk < 1:
            raise EdgeresError(f"--topk must be at least 1, got {topk}")
        if runner is None:
            with self.load_runner() as own:
                return self.classify(images, topk=topk, runner=own, chunk=chunk)
        spec = self.preprocess
        names = [str(getattr(im, "filename", "") or f"image {i}") if not isinstance(im, (str, os.PathLike))
                 else str(im) for i, im in enumerate(images)]
        labels = self.labels
        results: list[Classification] = []
        for start in range(0, len(images), chunk):
            batch = np.stack([spec(_open_image(im)) for im in images[start:start + chunk]])
            probs = softmax(run_batch(runner, batch).reshape(batch.shape[0], -1))
            for name, p in zip(names[start:start + chunk], probs):
                order = np.argsort(-p, kind="stable")[: min(topk, p.size)]
                top = [Prediction(int(i), labels[i] if labels and i < len(labels) else str(int(i)), float(p[i]))
                       for i in order]
                results.append(Classification(name, top))
        return results

    # --- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup.cleanup()
            self._cleanup = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_image(image: Any) -> Any:
    if not isinstance(image, (str, os.PathLike)):
        return image
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            im.load()
            return im.copy()
    except FileNotFoundError:
        raise EdgeresError(f"image {image} does not exist") from None
    except IsADirectoryError:
        raise EdgeresError(f"{image} is a folder: give image files (e.g. {Path(image) / '*.jpg'})") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise EdgeresError(f"cannot read image {image}: {exc}") from None


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """A bundle folder (has manifest.json) or a .tar.gz / .tgz file; cheap, no verification."""
    p = Path(path)
    if p.is_dir():
        return (p / MANIFEST).is_file()
    return p.is_file() and p.name.endswith((".tar.gz", ".tgz"))


def _find_root(extracted: Path, source: Path) -> Path:
    if (extracted / MANIFEST).is_file():
        return extracted
    subdirs = [d for d in extracted.iterdir() if d.is_dir() and (d / MANIFEST).is_file()]
    if len(subdirs) != 1:
        raise EdgeresError(f"{source} is not an edgeres bundle: no {MANIFEST} inside")
    return subdirs[0]


def load_bundle(path: str | os.PathLike[str], *, target: str | Target | None = None,
                require_backend: bool = True) -> Bundle:
    """Open and verify a bundle (its folder or its ``.tar.gz``).

    Refuses, with a message saying why: an unsafe archive, a missing or modified file,
    a bundle for another target than ``target`` (a name, alias or ``Target``), and,
    when ``require_backend``, one whose backend is not usable here. Use it as a
    context manager (or call ``close``) to remove the extraction folder of a tarball.
    """
    source = Path(path)
    holder: tempfile.TemporaryDirectory[str] | None = None  # a tarball's extraction folder
    try:
        if source.is_dir():
            root = source
        elif source.is_file():
            if not tarfile.is_tarfile(source):
                raise EdgeresError(f"{source} is neither a bundle folder nor a .tar.gz bundle")
            holder = tempfile.TemporaryDirectory(prefix="edgeres-bundle-")  # removed on close, GC or exit
            root = _find_root(safe_extract(source, Path(holder.name)), source)
        else:
            raise EdgeresError(f"bundle {source} does not exist")
        bundle = _open_verified(root, source, target, require_backend)
    except BaseException:
        if holder is not None:
            holder.cleanup()
        raise
    bundle._cleanup = holder
    return bundle


def _open_verified(root: Path, source: Path, target: str | Target | None, require_backend: bool) -> Bundle:
    where = f"bundle {source}"
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise EdgeresError(f"{where} is not an edgeres bundle: no {MANIFEST}")
    manifest = check_manifest(load_json(manifest_path, f"{where}:", "the bundle is damaged"), where)
    verify_files(root, manifest, where)
    bundle = Bundle(root=root, manifest=manifest, source=source)
    if target is not None:
        check_target(bundle, target)
    if require_backend:
        from edgeres.backends import get_backend

        a = get_backend(bundle.backend).available()
        if not a.ok:
            raise EdgeresError(f"{where} runs on {bundle.backend}, which is not usable here: {a.reason}")
    return bundle


def check_target(bundle: Bundle, expected: str | Target) -> None:
    """Refuse a bundle built for another target than ``expected`` (its name or one of its aliases)."""
    t = bundle.manifest["target"]
    own = {t["name"], *t.get("aliases", [])}
    wanted: Iterable[str] = [expected] if isinstance(expected, str) else [expected.name, *expected.aliases]
    if own.isdisjoint(wanted):
        name = expected if isinstance(expected, str) else expected.name
        raise EdgeresError(f"bundle {bundle.source} was built for target '{t['name']}' ({bundle.backend}), not "
                           f"'{name}'; build one with: edgeres build --target {name} ...")
