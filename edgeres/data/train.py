"""Train the demo model: an edgeres ResNet on the demo digits, deterministic, on CPU, in about a minute.

The images come through ``open_set`` exactly as a user's do (PNG files decoded with Pillow,
``DIGITS_PREPROCESS``), are held in memory (1,438 x 3x32x32 floats: 18 MB), and are augmented
with random shifts of up to 2 pixels. Residual branches start at zero (every block starts as the
identity: stable from the first step at a high learning rate), SGD with Nesterov momentum, a
one-cycle learning rate and label smoothing. Six epochs reach about 99% top-1 on the held-out
digits in about 80 s on 2 CPU cores (ResNet-18).

Deterministic: fixed seeds for weights, shuffling and augmentation, a fixed thread count and
``torch.use_deterministic_algorithms``. Identical bits on the same CPU type and torch version;
other CPUs (another SIMD width) may round differently.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from edgeres import __version__
from edgeres.data.demo import DATA_VERSION, DIGITS_PREPROCESS
from edgeres.data.sets import ImageSet
from edgeres.data.sources import open_set
from edgeres.errors import EdgeresError
from edgeres.fileio import atomic_path, load_json, sha256_file, write_json_atomic

# Bump when the recipe changes: it is part of the cache key of ensure_demo_model.
TRAIN_VERSION = 1
DEFAULT_EPOCHS = 6
DEFAULT_BATCH = 64
DEFAULT_LR = 0.1
DEFAULT_THREADS = 2
MAX_SHIFT = 2
# Per depth, where the defaults above do not suit: ResNet-50 at a peak learning rate of 0.1
# diverged in its first epoch, and each of its epochs costs about 3x ResNet-18's.
DEPTH_RECIPES: dict[int, dict[str, Any]] = {50: {"epochs": 5, "lr": 0.05}}


def default_recipe(depth: int) -> tuple[int, float]:
    """(epochs, peak learning rate) that ``ensure_demo_model`` trains a ResNet-``depth`` with."""
    recipe = DEPTH_RECIPES.get(depth, {})
    return int(recipe.get("epochs", DEFAULT_EPOCHS)), float(recipe.get("lr", DEFAULT_LR))


def _shift_batch(x: Any, generator: Any, max_shift: int = MAX_SHIFT) -> Any:
    """Shift every image by its own random (dx, dy) in [-max_shift, max_shift], edges replicated."""
    import torch
    import torch.nn.functional as F

    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dx, dy) in enumerate(offsets)])


def evaluate(model: Any, x: Any, y: Any, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on tensors ``x``/``y`` (eval mode, no gradients)."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            correct += int((model(x[start:start + batch_size]).argmax(1) == y[start:start + batch_size]).sum())
    return correct / max(len(x), 1)


def train_demo_model(out: str | os.PathLike[str], *, depth: int = 18, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
                     batch_size: int = DEFAULT_BATCH, lr: float = DEFAULT_LR, threads: int = DEFAULT_THREADS,
                     train_set: ImageSet | None = None, val_set: ImageSet | None = None,
                     progress: bool = True) -> dict[str, Any]:
    """Train an edgeres ResNet-``depth`` on the demo digits; write ``out/model.pth`` (torchvision-layout
    state_dict) and ``out/model.json``; return what model.json says.

    ``train_set``/``val_set`` default to ``demo:digits-train`` / ``demo:digits-val`` (tests pass
    smaller ones); both must be labeled and share ``DIGITS_PREPROCESS``'s input size.
    """
    from edgeres.optional import require

    torch = require("torch", "training the demo model")
    from edgeres.models import check_depth

    check_depth(depth)
    if epochs < 1:
        raise EdgeresError(f"epochs must be at least 1, got {epochs}")
    out = Path(out)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    started = time.perf_counter()
    train_set = train_set or open_set("demo:digits-train", require_labels=True)
    val_set = val_set or open_set("demo:digits-val", require_labels=True)
    for role, data in (("training", train_set), ("validation", val_set)):
        if not data.has_labels:
            raise EdgeresError(f"the {role} set {data.name} has no labels")
    train_data = train_set.load_all(progress="decoding training images" if progress else None)
    val_data = val_set.load_all(progress="decoding validation images" if progress else None)

    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        run = _fit(depth, len(train_set.classes or []), train_data, val_data, epochs=epochs, seed=seed,
                   batch_size=batch_size, lr=lr, log=log)
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.pth") as tmp:
        torch.save(run.pop("state"), tmp)
    info: dict[str, Any] = {
        "name": f"demo ResNet-{depth} on scikit-learn digits",
        "depth": depth,
        "num_classes": len(train_set.classes or []),
        "input_size": int(train_data[0].shape[-1]),
        "in_channels": 3,
        "shortcut": "projection",
        "classes": list(train_set.classes or []),
        "preprocess": train_set.preprocess.to_dict(),
        **{k: run[k] for k in ("val_top1", "train_top1", "train_seconds", "train_cpu_seconds")},
        "total_seconds": round(time.perf_counter() - started, 1),
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "threads": threads,
        "recipe": {"optimizer": "SGD nesterov momentum 0.9, weight decay 5e-4", "schedule": "one-cycle",
                   "label_smoothing": 0.1, "augmentation": f"random shift up to {MAX_SHIFT} px",
                   "zero_init_residual": True},
        "history": run["history"],
        "train_set": train_set.describe(),
        "val_set": val_set.describe(),
        "checkpoint": "model.pth",
        "checkpoint_sha256": sha256_file(out / "model.pth"),
        "data_version": DATA_VERSION,
        "train_version": TRAIN_VERSION,
        "edgeres_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "cpu_count": os.cpu_count(),
    }
    if train_set.preprocess != DIGITS_PREPROCESS:
        info["note"] = "trained with a preprocessing other than DIGITS_PREPROCESS"
    write_json_atomic(out / "model.json", info)
    return info


def _fit(depth: int, num_classes: int, train_data: tuple[Any, Any], val_data: tuple[Any, Any], *, epochs: int,
         seed: int, batch_size: int, lr: float, log: Any) -> dict[str, Any]:
    """The training loop (SGD, one-cycle schedule, random shifts): the trained ``state`` dict, the
    per-epoch ``history``, accuracies and timings."""
    import torch
    import torch.nn.functional as F

    from edgeres.models import ResNet

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = ResNet(depth, num_classes=num_classes, zero_init_residual=True)
    xt, yt = torch.from_numpy(train_data[0]), torch.from_numpy(train_data[1])
    xv, yv = torch.from_numpy(val_data[0]), torch.from_numpy(val_data[1])
    steps_per_epoch = (len(xt) + batch_size - 1) // batch_size
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                   pct_start=0.25)
    train_started, cpu_started = time.perf_counter(), time.process_time()
    history = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        total_loss, seen = 0.0, 0
        for start in range(0, len(xt), batch_size):
            idx = order[start:start + batch_size]
            if len(idx) < 2:  # batch norm needs two samples
                continue
            xb = _shift_batch(xt[idx], generator)
            loss = F.cross_entropy(model(xb), yt[idx], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(idx)
            seen += len(idx)
        val_top1 = evaluate(model, xv, yv)
        history.append({"epoch": epoch + 1, "loss": round(total_loss / max(seen, 1), 4),
                        "val_top1": round(val_top1, 4)})
        log(f"epoch {epoch + 1}/{epochs}: loss {total_loss / max(seen, 1):.3f}, "
            f"val top-1 {100 * val_top1:.2f}% ({time.perf_counter() - train_started:.1f}s)")
    train_seconds = time.perf_counter() - train_started
    train_cpu_seconds = time.process_time() - cpu_started
    train_top1 = evaluate(model, xt, yt)
    model.eval()
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "val_top1": round(history[-1]["val_top1"], 4), "train_top1": round(train_top1, 4),
            "train_seconds": round(train_seconds, 1), "train_cpu_seconds": round(train_cpu_seconds, 1),
            "history": history}


def read_model_info(folder: str | os.PathLike[str]) -> dict[str, Any]:
    from edgeres.schemas import ModelInfo

    return load_json(Path(folder) / "model.json", "model description", "write it again (or remove it)",
                     shape=ModelInfo)

