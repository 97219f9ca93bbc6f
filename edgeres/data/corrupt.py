"""``demo:digits-c``: the held-out digits under realistic corruptions, in the spirit of ImageNet-C.

The 359 validation digits (never trained on) are each written once per corruption and
severity: Gaussian noise, Gaussian blur, lowered contrast, a small rotation, a shift and JPEG
compression, at five severities each: 6 x 5 x 359 = 10,770 labeled 32x32 PNG files in the
ImageNet layout (``<digit>/<corruption>-s<severity>-<index>.png``). Why: 359 images cannot
resolve an INT8 drop finer than about +-0.5 points (one image is 0.28 points); ten thousand
images, some hard enough that FP32 misses them, can.

Deterministic: every random choice (the noise, a rotation's sign, a shift's direction) comes
from a generator seeded by (seed, corruption, severity, image), so the files do not depend on
the order they are written in. The pixel operations are numpy's and Pillow's: identical bytes
for the same Pillow version (its JPEG encoder is libjpeg-turbo's). Like every set, the result
is fingerprinted by its contents. Written once under ``cache_dir()/demo`` (temporary folder,
then renamed), from the digits that scikit-learn ships: nothing is downloaded.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.data.demo import DATA_VERSION, _demo_root, demo_digits_dir, materialize

# Bump when the files written here change (parameters, operations, layout).
CORRUPT_VERSION = 1
CORRUPT_SEED = 0
SEVERITIES = (1, 2, 3, 4, 5)

# Per corruption, its parameter at severities 1..5 (pixel values are 0..255, images 32x32, the
# digits' strokes about 4 pixels wide).
PARAMETERS: dict[str, tuple[float, ...]] = {
    "gaussian-noise": (24, 36, 48, 60, 72),         # noise sigma, in grey levels
    "gaussian-blur": (1.0, 1.4, 1.8, 2.2, 2.6),     # blur radius, pixels
    "contrast": (0.9, 0.8, 0.7, 0.6, 0.5),          # contrast kept (1 = unchanged), about the image mean
    "rotate": (5, 10, 15, 20, 25),                  # rotation, degrees, random sign
    "shift": (1, 2, 3, 4, 5),                       # shift, pixels, random direction
    "jpeg": (15, 10, 6, 3, 1),                      # JPEG quality
}


def _noise(image: Any, sigma: float, rng: np.random.Generator) -> Any:
    from PIL import Image

    grey = np.asarray(image, np.float64)
    return Image.fromarray(np.clip(np.rint(grey + rng.normal(0.0, sigma, grey.shape)), 0, 255).astype(np.uint8))


def _blur(image: Any, radius: float, rng: np.random.Generator) -> Any:
    from PIL import ImageFilter

    return image.filter(ImageFilter.GaussianBlur(radius))


def _contrast(image: Any, kept: float, rng: np.random.Generator) -> Any:
    from PIL import Image

    grey = np.asarray(image, np.float64)
    mean = grey.mean()
    return Image.fromarray(np.clip(np.rint((grey - mean) * kept + mean), 0, 255).astype(np.uint8))


def _rotate(image: Any, degrees: float, rng: np.random.Generator) -> Any:
    from PIL import Image

    sign = 1.0 if rng.random() < 0.5 else -1.0
    return image.rotate(sign * degrees, resample=Image.Resampling.BICUBIC, fillcolor=0)


def _shift(image: Any, pixels: float, rng: np.random.Generator) -> Any:
    from PIL import Image

    angle = rng.uniform(0.0, 2.0 * np.pi)
    dx, dy = round(pixels * np.cos(angle)), round(pixels * np.sin(angle))
    return image.transform(image.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy),
                           resample=Image.Resampling.NEAREST, fillcolor=0)


def _jpeg(image: Any, quality: float, rng: np.random.Generator) -> Any:
    from PIL import Image

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        decoded.load()
        return decoded.convert("L")


OPERATIONS: dict[str, Callable[[Any, float, np.random.Generator], Any]] = {
    "gaussian-noise": _noise, "gaussian-blur": _blur, "contrast": _contrast, "rotate": _rotate,
    "shift": _shift, "jpeg": _jpeg,
}


def corrupt(image: Any, corruption: str, severity: int, index: int, seed: int = CORRUPT_SEED) -> Any:
    """One greyscale Pillow image under ``corruption`` at ``severity`` (1..5); ``index`` (the
    image's number) seeds its random choices together with ``seed``."""
    parameter = PARAMETERS[corruption][severity - 1]
    rng = np.random.default_rng([seed, list(PARAMETERS).index(corruption), severity, index])
    return OPERATIONS[corruption](image.convert("L"), parameter, rng)


def write_corrupted(source: Path, folder: Path) -> dict[str, Any]:
    """Every ``source/<class>/<index>.png`` under every corruption and severity, into
    ``folder/<class>/``; returns what was written (for the set's marker file)."""
    from PIL import Image

    counts: dict[str, int] = {}
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        (folder / class_dir.name).mkdir()
        for path in sorted(class_dir.glob("*.png")):
            index = int(path.stem)
            with Image.open(path) as original:
                grey = original.convert("L")
            for corruption in PARAMETERS:
                for severity in SEVERITIES:
                    out = folder / class_dir.name / f"{corruption}-s{severity}-{index:04d}.png"
                    corrupt(grey, corruption, severity, index).save(out, optimize=False)
                    counts[corruption] = counts.get(corruption, 0) + 1
    return {"version": CORRUPT_VERSION, "data_version": DATA_VERSION,
            "seed": CORRUPT_SEED, "severities": list(SEVERITIES),
            "parameters": {k: list(v) for k, v in PARAMETERS.items()}, "counts": counts,
            "classes": [str(i) for i in range(10)]}


def _write_digits_c(folder: Path) -> dict[str, Any]:
    return {"source": "demo:digits-val"} | write_corrupted(demo_digits_dir("val"), folder)


def demo_digits_c_dir() -> Path:
    """``cache_dir()/demo/digits-c-v1``: the corrupted validation digits (10,770 labeled PNGs),
    written on first use (a few seconds)."""
    return materialize(_demo_root() / f"digits-c-v{CORRUPT_VERSION}-d{DATA_VERSION}", _write_digits_c)


def corruption_of(name: str) -> tuple[str, int]:
    """(corruption, severity) of a file written here, from its name (``rotate-s3-0042.png``)."""
    stem = Path(name).stem
    corruption, severity, _index = stem.rsplit("-", 2)
    return corruption, int(severity[1:])
