"""What every ``edgeres`` subcommand shares: integer arguments, the model arguments, printing."""

from __future__ import annotations

import argparse
import json
from typing import Any

from edgeres import limits
from edgeres.argtypes import integer
from edgeres.errors import UsageError
from edgeres.limits import parse_batches


def export_batch(text: str) -> None:
    """--batch of export: 'dynamic' or one batch size."""
    if text == "dynamic":
        return
    try:
        sizes = parse_batches(text)
    except UsageError:
        sizes = []
    if len(sizes) != 1:
        raise UsageError(f"batch must be 'dynamic' or one batch size from 1 to {limits.BATCH.hi:,}, got {text!r}")


def batch_profile(text: str) -> None:
    """--batch-profile: MIN:OPT:MAX."""
    from edgeres.artifact import BatchProfile

    BatchProfile.parse(text)


def add_model_args(p: argparse.ArgumentParser, depth_required: bool = True) -> None:
    p.add_argument("--depth", type=integer(), required=depth_required, default=None if depth_required else 50,
                   help="ResNet depth: 18, 34, 50, 101 or 152")
    p.add_argument("--num-classes", type=integer(limits.NUM_CLASSES), default=1000,
                   help="classes of the final layer (default 1000)")
    p.add_argument("--input-size", type=integer(limits.INPUT_SIZE), default=224,
                   help="square input resolution (default 224, >= 32)")
    p.add_argument("--in-channels", type=integer(limits.IN_CHANNELS), default=3, help="input channels (default 3)")
    p.add_argument("--shortcut", choices=["projection", "zeropad"], default="projection",
                   help="shortcut where shapes change: 1x1 projection (torchvision) or the paper's zero padding")


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """Print JSON with ``--json``, else the human-readable text."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


def keep_fp_list(text: str | None) -> list[str] | None:
    """--keep-fp: None = the default layers, 'none' = quantize every layer, else the names given."""
    if text is None:
        return None
    if text.strip().lower() in ("none", ""):
        return []
    return [t.strip() for t in text.split(",") if t.strip()]
