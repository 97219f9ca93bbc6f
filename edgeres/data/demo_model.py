"""The demo model: an edgeres ResNet trained on the demo digits, cached and trained on first use."""

from __future__ import annotations

from pathlib import Path

from edgeres.data import train
from edgeres.data.demo import DATA_VERSION, materialize
from edgeres.fileio import cache_dir


def demo_model_dir(depth: int = 18, epochs: int | None = None, seed: int = 0) -> Path:
    epochs = train.default_recipe(depth)[0] if epochs is None else epochs
    version = f"d{DATA_VERSION}-t{train.TRAIN_VERSION}"
    return cache_dir() / "models" / f"demo-resnet{depth}-e{epochs}-s{seed}-{version}"


def ensure_demo_model(depth: int = 18, epochs: int | None = None, seed: int = 0, progress: bool = True) -> Path:
    """A trained demo model directory (``model.pth`` + ``model.json``), cached under
    ``cache_dir()/models`` and keyed by (depth, epochs, seed, data and training-recipe versions).
    Trains it on first use with its depth's recipe (``train.default_recipe``): ResNet-18 in
    11-90 s on 2 CPU cores, ResNet-50 in about 2.5x that."""
    default_epochs, lr = train.default_recipe(depth)
    epochs = default_epochs if epochs is None else epochs
    final = demo_model_dir(depth, epochs, seed)
    if (final / "model.json").is_file() and (final / "model.pth").is_file():
        return final
    return materialize(final, lambda tmp: train.train_demo_model(tmp, depth=depth, epochs=epochs, seed=seed, lr=lr,
                                                                 progress=progress))
