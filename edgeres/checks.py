"""Argument checks shared by the command line and the Python API: one message per mistake,
naming the command-line option, raised as ``UsageError`` (exit code 2) before any work starts."""

from __future__ import annotations

from edgeres import limits
from edgeres.errors import UsageError


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def at_least_one(**values: int | None) -> None:
    """Counts (images, batch sizes, iterations): None means "not given", anything else a whole
    number from 1 to ``limits.COUNT``'s bound."""
    for name, value in values.items():
        limits.check_optional(_flag(name), value, limits.COUNT)


def accuracy_budget(budget: float | None) -> None:
    """The points of accuracy INT8 may lose: none given, or a finite number from 0 to 100."""
    limits.check_optional("--accuracy-budget (the points of accuracy INT8 may lose)", budget, limits.POINTS)


def analysis_needs_val(sensitivity: bool, budget: float | None, has_val: bool) -> None:
    """Sensitivity ranking and the accuracy budget measure on a validation set."""
    if (sensitivity or budget is not None) and not has_val:
        raise UsageError("--sensitivity and --accuracy-budget need a validation set (--val DIR|spec)")


def heldout(holdout: float | None, has_test: bool, budget: float | None) -> None:
    """--holdout / --test judge an accuracy budget: one or the other, and a fraction in [0, 1)."""
    if (holdout is not None or has_test) and budget is None:
        raise UsageError("--holdout and --test judge an --accuracy-budget: give one")
    if holdout is not None and has_test:
        raise UsageError("give --holdout or --test, not both (--test is the held-out set)")
    if holdout is not None and (isinstance(holdout, bool) or not 0.0 <= holdout < 1.0):
        raise UsageError(f"--holdout must be a fraction in [0, 1), got {holdout!r} (0 turns the split off)")
