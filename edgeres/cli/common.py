"""What every ``edgeres`` subcommand shares: integer arguments, the model arguments, printing."""

from __future__ import annotations

import argparse
import json
from typing import Any


def integer(text: str) -> int:
    """An integer; its range is checked where the value is used, with a message that says why."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def add_model_args(p: argparse.ArgumentParser, depth_required: bool = True) -> None:
    p.add_argument("--depth", type=integer, required=depth_required, default=None if depth_required else 50,
                   help="ResNet depth: 18, 34, 50, 101 or 152")
    p.add_argument("--num-classes", type=integer, default=1000, help="classes of the final layer (default 1000)")
    p.add_argument("--input-size", type=integer, default=224, help="square input resolution (default 224, >= 32)")
    p.add_argument("--in-channels", type=integer, default=3, help="input channels (default 3)")
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
