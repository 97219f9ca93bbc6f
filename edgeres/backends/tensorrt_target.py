"""A TensorRT target's options checked against its device when the target loads.

A target copied from another and edited (``dla_core = 5`` where the device has 2 DLA cores,
``typed_mode = "strong"`` for a Jetson Nano whose TensorRT stops at 8.2, ``typed_mode =
"strongly"``) is refused by ``edgeres targets show`` and by the first step of a build, with
the option, the value and what the device has, instead of after export and calibration or
silently on the device. What only the device knows (an undeclared DLA count) is checked there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeres.backends.tensorrt_plan import (
    PRECISION_FLAGS_REMOVED_IN,
    STRONGLY_TYPED_FLAG_FROM,
    parse_version,
    resolve_options,
    version_text,
)
from edgeres.errors import EdgeresError


def dla_core_problem(core: int, device: Mapping[str, Any], name: str) -> str | None:
    """Why DLA core ``core`` does not exist on ``name``'s device (None where it may: a GPU request, a
    core the device declares, or a device that does not declare its DLA count)."""
    cores = device.get("dla_cores")
    if core < 0 or not isinstance(cores, int) or isinstance(cores, bool) or core < cores:
        return None
    if cores == 0:
        return f"dla_core = {core}, but {name} has no DLA cores: use dla_core = -1 (GPU)"
    return (f"dla_core = {core}, but {name} has {cores} DLA core(s) (0 to {cores - 1}): use one of them, "
            "or -1 for the GPU")


def tensorrt_range(options: Mapping[str, Any], device: Mapping[str, Any]
                   ) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """The TensorRT versions the device can have: the ``min_tensorrt`` option to ``[device] tensorrt_max``."""
    newest = device.get("tensorrt_max")
    return parse_version(str(options["min_tensorrt"])), None if newest is None else parse_version(str(newest))


def _typed_mode_problem(mode: str, oldest: tuple[int, ...], newest: tuple[int, ...] | None, name: str) -> str | None:
    if mode == "strong" and newest is not None and newest < STRONGLY_TYPED_FLAG_FROM:
        return (f"typed_mode = \"strong\", but {name}'s TensorRT (up to {version_text(newest)}) has no strongly "
                "typed networks (TensorRT 9.1+): use \"auto\" or \"weak\"")
    if mode == "weak" and oldest >= PRECISION_FLAGS_REMOVED_IN:
        return (f"typed_mode = \"weak\", but {name}'s TensorRT ({version_text(oldest)}+) builds only strongly "
                "typed networks (weak typing was removed in 11): use \"auto\" or \"strong\"")
    return None


def check_target_options(target: Any) -> None:
    """Refuse a TensorRT target whose options its device cannot honour, naming the option and the value."""
    from edgeres.backends.tensorrt_render import target_recipes

    where = f"target file {target.source}" if target.source else f"target {target.name}"
    try:
        opts = resolve_options(target.options)
        oldest, newest = tensorrt_range(opts, target.device)
    except EdgeresError as exc:
        raise EdgeresError(f"{where}: {exc}") from None
    if newest is not None and newest < oldest:
        raise EdgeresError(f"{where}: [device] tensorrt_max = {target.device['tensorrt_max']!r} is older than "
                           f"min_tensorrt = {opts['min_tensorrt']!r}")
    if not target_recipes(oldest, newest):
        raise EdgeresError(f"{where}: no kit recipe covers TensorRT {opts['min_tensorrt']} - "
                           f"{target.device.get('tensorrt_max', 'newest')} (the oldest is 8.2)")
    problem = (dla_core_problem(int(opts["dla_core"]), target.device, target.name)
               or _typed_mode_problem(str(opts["typed_mode"]), oldest, newest, target.name))
    if problem:
        raise EdgeresError(f"{where}: option {problem}")


__all__ = ["check_target_options", "dla_core_problem", "tensorrt_range"]
