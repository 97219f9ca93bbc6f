"""Demo data from real data that installed packages ship (nothing is downloaded).

* Digits: scikit-learn's 1,797 real handwritten digits (8x8, 16 grey levels, 10 classes),
  written as 32x32 RGB PNG files in the ImageNet folder layout with a fixed, stratified
  80/20 train/validation split, so the demo exercises exactly the path a user's images take.
  32x32 because it is the smallest input an edgeres ResNet takes (the stem divides by 4, the
  four stages by 8 more); bicubic upsampling, because nearest-neighbour would turn every pixel
  into a 4x4 block that no camera produces.
* Photos: the real photographs scikit-image ships in its wheel (``skimage/data/``), copied
  byte for byte into a flat folder: an unlabeled smoke/calibration set for full-size models
  (the ImageNet preprocessing makes them 224x224).

Both are written once under ``cache_dir()/demo`` (built in a temporary folder, then renamed:
never half-written) and reused. The demo model trained on the digits: ``demo_model.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec
from edgeres.errors import EdgeresError
from edgeres.fileio import cache_dir

# Bump when the files written here change: it is part of every cache key that depends on them.
DATA_VERSION = 1
DIGITS_SIZE = 32
DIGITS_VAL_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
DIGITS_SPLITS = ("train", "val")
MARKER = ".complete.json"

# What the demo model was trained with: the images are already 32x32, so resize and crop are
# identities; ImageNet's mean/std, so the demo model normalizes like any torchvision ResNet and
# the same preprocessing code path (and its manifest entry) serves both.
DIGITS_PREPROCESS = PreprocessSpec(resize=DIGITS_SIZE, crop=DIGITS_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD)

# The real photographs in skimage/data (synthetic test patterns, masks and stereo disparity
# maps are left out). Files missing from an installed version are skipped.
PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png",
    "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "microaneurysms.png", "moon.png",
    "motorcycle_left.png", "motorcycle_right.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
)


def _demo_root() -> Path:
    return cache_dir() / "demo"


def _is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished temporary folder into place; if another process won the race, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not _is_complete(final):
            if final.exists():
                shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def materialize(final: Path, write: Any) -> Path:
    """Run ``write(folder)`` into a temporary folder beside ``final`` and rename it into place, once."""
    if _is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        info = write(tmp)
        (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if final.exists() and not _is_complete(final):
            shutil.rmtree(final, ignore_errors=True)  # a leftover of an older, interrupted layout
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def digits_split(targets: np.ndarray, val_fraction: float = DIGITS_VAL_FRACTION,
                 seed: int = DIGITS_SPLIT_SEED) -> np.ndarray:
    """A stratified split: True where an item goes to validation (``val_fraction`` of each class)."""
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(targets), dtype=bool)
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        n_val = round(len(members) * val_fraction)
        is_val[rng.permutation(members)[:n_val]] = True
    return is_val


def digit_image(pixels: np.ndarray, size: int = DIGITS_SIZE) -> Any:
    """One 8x8 sklearn digit (values 0..16) -> a ``size`` x ``size`` RGB Pillow image (bicubic)."""
    from PIL import Image

    grey = Image.fromarray(np.clip(np.rint(pixels * (255.0 / 16.0)), 0, 255).astype(np.uint8))
    return grey.resize((size, size), Image.Resampling.BICUBIC).convert("RGB")


def _write_digits(folder: Path) -> dict[str, Any]:
    from edgeres.optional import require

    datasets = require("sklearn.datasets", "the demo digits (scikit-learn's load_digits)")
    digits = datasets.load_digits()
    is_val = digits_split(digits.target)
    counts: dict[str, int] = {}
    for split in DIGITS_SPLITS:
        for label in range(10):
            (folder / split / str(label)).mkdir(parents=True)
    for index, (pixels, label, val) in enumerate(zip(digits.images, digits.target, is_val)):
        split = "val" if val else "train"
        digit_image(pixels).save(folder / split / str(int(label)) / f"{index:04d}.png", optimize=False)
        counts[split] = counts.get(split, 0) + 1
    return {"source": "sklearn.datasets.load_digits", "version": DATA_VERSION, "size": DIGITS_SIZE,
            "val_fraction": DIGITS_VAL_FRACTION, "split_seed": DIGITS_SPLIT_SEED, "counts": counts,
            "classes": [str(i) for i in range(10)]}


def demo_digits_dir(split: str) -> Path:
    """``cache_dir()/demo/digits-v1/<split>``: the sklearn digits as 32x32 RGB PNGs in the ImageNet
    layout (``<split>/<digit>/<index>.png``), written on first use. ``split``: "train" (1,438 images)
    or "val" (359 images), stratified 80/20 with a fixed seed."""
    if split not in DIGITS_SPLITS:
        raise EdgeresError(f"unknown digits split {split!r}: choose 'train' or 'val'")
    root = materialize(_demo_root() / f"digits-v{DATA_VERSION}", _write_digits)
    return root / split


def skimage_data_dir() -> Path:
    """The folder of files shipped in scikit-image's wheel (found without importing skimage.data,
    whose functions may download)."""
    from importlib.util import find_spec

    spec = find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        from edgeres.optional import require

        require("skimage", "the demo photographs (scikit-image's shipped data)")
        raise EdgeresError("scikit-image is installed without its package folder")  # pragma: no cover
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _write_photos(folder: Path) -> dict[str, Any]:
    source = skimage_data_dir()
    copied = []
    for name in PHOTOS:
        if (source / name).is_file():
            shutil.copyfile(source / name, folder / name)
            copied.append(name)
    if not copied:
        raise EdgeresError(f"no photographs found in {source}: is scikit-image installed completely?")
    return {"source": str(source), "version": DATA_VERSION, "files": copied}


def demo_photos_dir() -> Path:
    """``cache_dir()/demo/photos-v1``: scikit-image's shipped photographs, a flat unlabeled folder."""
    return materialize(_demo_root() / f"photos-v{DATA_VERSION}", _write_photos)
