"""A bundle fed camera frames: uint8 HWC (RGB or BGR) in, logits out; cast, layout, colour order and
mean/std run inside the engine (``edgeres.export.frame_input``), resize and crop stay on the host.

    with load_bundle("bundle") as bundle:
        runner = load_frame_runner(bundle, order="BGR")
        logits = runner(frames)            # uint8 [N, crop, crop, 3]

Torch-free. The bundle's artifact is unchanged: the frame input is added when it is loaded, from the
preprocessing its manifest records, so one bundle serves both paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeres.errors import EdgeresError
from edgeres.export.frame_input import check_order

if TYPE_CHECKING:
    from collections.abc import Callable

    from edgeres.artifact import Artifact
    from edgeres.bundle.runtime import Bundle
    from edgeres.data.preprocess import PreprocessSpec


@dataclass
class FrameRunner:
    """uint8 frames [N, crop, crop, 3] in, logits out, at the batch size it was loaded for."""

    run: Callable[[np.ndarray], np.ndarray]
    shape: tuple[int, int, int, int]
    info: dict[str, Any] = field(default_factory=dict)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if frames.dtype != np.uint8 or tuple(frames.shape) != self.shape:
            raise EdgeresError(f"frame input takes uint8 frames of shape {list(self.shape)}, got {frames.dtype} "
                               f"{list(frames.shape)}: resize and crop on the host first (PreprocessSpec.crop_frame)")
        return self.run(np.ascontiguousarray(frames))


def load_frame_runner(bundle: Bundle, order: str = "RGB", *, batch: int = 1, threads: int | None = None) -> FrameRunner:
    """The bundle's artifact with a uint8 frame input in ``order``, compiled with the options the
    bundle's own runner uses."""
    return frame_runner(bundle.artifact(), bundle.preprocess, order, batch=batch, threads=threads)


def frame_runner(artifact: Artifact, spec: PreprocessSpec, order: str = "RGB", *, batch: int = 1,
                 threads: int | None = None) -> FrameRunner:
    """``artifact`` with a uint8 frame input in ``order``, from the backend that runs it."""
    from edgeres.backends import backend_for

    check_order(order)
    shape = (batch, spec.crop, spec.crop, 3)
    run, info = backend_for(artifact).load_frames(artifact, spec, order, shape, threads)
    return FrameRunner(run, shape, {**info, "input": f"uint8 {order} frames {list(shape)}",
                                    "preprocessing": "cast, colour order, mean/std, layout inside the engine"})
