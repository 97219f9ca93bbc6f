"""Load published or trained checkpoints into an edgeres ResNet, safely."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from edgeres.errors import EdgeresError
from edgeres.optional import require

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")  # torchvision/examples, the PyTorch tutorial
MAX_LISTED = 8


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint without executing pickled code; unwrap and strip ``module.``."""
    path = Path(path)
    if not path.is_file():
        raise EdgeresError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":  # timm's ResNets use torchvision's key names
        raw = _read_safetensors(path)
    else:
        raw = _read_torch(path)
    for key in WRAPPER_KEYS:
        if isinstance(raw, Mapping) and isinstance(raw.get(key), Mapping):
            raw = raw[key]
            break
    if not isinstance(raw, Mapping) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        keys = f": its keys are {_listed([str(k) for k in raw])}" if isinstance(raw, Mapping) else ""
        raise EdgeresError(f"checkpoint {path} holds no state_dict (a mapping of names to tensors, at the top or "
                           f"under {', '.join(repr(k) for k in WRAPPER_KEYS)}){keys}")
    return {k.removeprefix("module."): v for k, v in raw.items()}


def _read_torch(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any failure here means "not a usable checkpoint"
        # torch's own message suggests weights_only=False, which would run pickled code: never.
        raise EdgeresError(f"cannot read checkpoint {path}: not a PyTorch state_dict file of tensors (edgeres never "
                           "loads pickled objects; save the model with torch.save(model.state_dict(), path))") from None


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    safetensors = require("safetensors", "reading a .safetensors checkpoint")
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (safetensors.SafetensorError, OSError, ValueError) as exc:
        raise EdgeresError(f"cannot read checkpoint {path}: not a safetensors file ({exc})") from None


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" (+{len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else "")


def load_state_dict_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``state`` with ``strict=True`` semantics, listing every mismatch in one error."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listed(unexpected)}")
    if misshaped:
        problems.append(f"wrong shapes (checkpoint != model): {_listed(misshaped)}")
    if problems:
        hint = " Check --depth, --num-classes and the shortcut type against the checkpoint."
        raise EdgeresError(f"{source} does not match the model: " + "; ".join(problems) + "." + hint)
    model.load_state_dict(state, strict=True)


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> None:
    load_state_dict_strict(model, read_state_dict(path), source=f"checkpoint {path}")
