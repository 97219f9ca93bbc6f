"""Bounds on every number a user hands edgeres, checked before anything is written.

A size, batch, count or time outside these bounds is a typo (``--input-size 100000``,
``--accuracy-budget nan``), not a request: without a bound it reaches PyTorch or a
calibrator and dies there with an allocation error or a silent nonsense result. The
command line checks its flags through ``edgeres.argtypes``; the Python API calls
``check`` with the same bounds (``BuildRequest``, ``check_input_size``, batch lists).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edgeres.errors import UsageError


@dataclass(frozen=True)
class Bound:
    """An inclusive range and the unit it is counted in (for the message)."""

    lo: float
    hi: float
    unit: str
    integer: bool = True
    open_lo: bool = False  # lo itself is excluded (a time budget of 0 s measures nothing)

    def describe(self) -> str:
        low = f"more than {_fmt(self.lo)}" if self.open_lo else f"at least {_fmt(self.lo)}"
        return f"{low} and at most {_fmt(self.hi)} {self.unit}".rstrip()


def _fmt(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:g}"


INPUT_SIZE = Bound(32, 2048, "pixels")  # ResNet's five stride-2 stages need 32; 2048 px is 100x ImageNet's pixels
NUM_CLASSES = Bound(1, 100_000, "classes")
IN_CHANNELS = Bound(1, 64, "channels")
BATCH = Bound(1, 4096, "images")
COUNT = Bound(1, 10_000_000, "")  # images in a set, timed iterations
WARMUP = Bound(0, 100_000, "runs")
THREADS = Bound(1, 1024, "threads")
SECONDS = Bound(0, 86_400, "seconds", integer=False, open_lo=True)
WAIT_SECONDS = Bound(0, 86_400, "seconds", integer=False)  # a minimum or a wait: 0 means none
RETRIES = Bound(0, 1000, "")
POINTS = Bound(0, 100, "points", integer=False)  # an accuracy budget, in top-1 points
PERCENTILE = Bound(0, 100, "", integer=False, open_lo=True)
OPSET = Bound(7, 30, "")
SEED = Bound(0, 2**32 - 1, "")
TOPK = Bound(1, 100_000, "")


def check(name: str, value: float, bound: Bound) -> float:
    """``value`` if it is a finite number inside ``bound``; else a ``UsageError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number, got {value}")
    if bound.integer and not float(value).is_integer():
        raise UsageError(f"{name} must be a whole number, got {value}")
    low_ok = value > bound.lo if bound.open_lo else value >= bound.lo
    if not (low_ok and value <= bound.hi):
        raise UsageError(f"{name} must be {bound.describe()}, got {_fmt(value)}")
    return value


def check_optional(name: str, value: float | None, bound: Bound) -> None:
    if value is not None:
        check(name, value, bound)


def parse_batches(text: str | Sequence[int]) -> list[int]:
    """'1,8' -> [1, 8]."""
    if not isinstance(text, str):
        values = [int(v) for v in text]
    else:
        try:
            values = [int(v) for v in text.replace(" ", "").split(",") if v]
        except ValueError:
            raise UsageError(f"batch sizes must be comma-separated integers (e.g. 1,8), got {text!r}") from None
    if not values:
        raise UsageError(f"batch sizes must be comma-separated integers (e.g. 1,8), got {text!r}")
    for v in values:
        check("a batch size", v, BATCH)
    return list(dict.fromkeys(values))
