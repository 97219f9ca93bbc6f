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
from edgeres.export.frame_input import FRAME_INPUT, add_frame_input, check_order, openvino_frame_model

if TYPE_CHECKING:
    from collections.abc import Callable

    from edgeres.backends.base import Artifact
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
    """An OpenVINO IR or an ONNX model (ONNX Runtime) with a uint8 frame input in ``order``."""
    check_order(order)
    loaders = {"openvino": _openvino, "onnxruntime": _onnxruntime, "onnx": _onnxruntime}
    backend = str(artifact.metadata.get("backend"))
    if backend not in loaders:
        raise EdgeresError(f"frame input for {backend} is built into the engine from edgeres's frame ONNX (see the "
                           "device kit's README); at load time it is added for OpenVINO and ONNX Runtime only")
    shape = (batch, spec.crop, spec.crop, 3)
    run, info = loaders[backend](artifact, spec, order, shape, threads)
    return FrameRunner(run, shape, {**info, "input": f"uint8 {order} frames {list(shape)}",
                                    "preprocessing": "cast, colour order, mean/std, layout inside the engine"})


def _openvino(artifact: Artifact, spec: PreprocessSpec, order: str, shape: tuple[int, int, int, int],
              threads: int | None) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    import openvino as ov

    from edgeres.backends.openvino import config_for

    model = ov.Core().read_model(str(artifact.path))
    n, size = shape[0], spec.crop
    model.reshape([n, 3, size, size] if spec.layout == "NCHW" else [n, size, size, 3])
    config = config_for(artifact.metadata, threads=threads)
    compiled = ov.Core().compile_model(openvino_frame_model(model, spec, order), str(artifact.metadata.get("device", "CPU")),
                                       config)
    request = compiled.create_infer_request()

    def run(frames: np.ndarray) -> np.ndarray:
        request.infer({0: frames}, share_inputs=True)
        return np.array(request.get_output_tensor(0).data, copy=True)

    return run, {"backend": "openvino", "how": "PrePostProcessor", "config": config}


def _onnxruntime(artifact: Artifact, spec: PreprocessSpec, order: str, shape: tuple[int, int, int, int],
                 threads: int | None) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    import onnx
    import onnxruntime as ort

    from edgeres.backends.onnxruntime import OPTIONS, PROVIDER, _session_options, check_options

    meta = artifact.metadata
    options = {k: v for k, v in (meta.get("options") or {}).items() if k in OPTIONS and k != "save_optimized"}
    if threads:
        options["threads"] = threads
    options = check_options(options)
    model = add_frame_input(onnx.load(str(artifact.path)), spec, order)
    disabled = (meta.get("onnxruntime") or {}).get("disabled_optimizers", [])
    session = ort.InferenceSession(model.SerializeToString(), _session_options(ort, options), providers=[PROVIDER],
                                   disabled_optimizers=list(disabled))
    output = session.get_outputs()[0].name

    def run(frames: np.ndarray) -> np.ndarray:
        return session.run([output], {FRAME_INPUT: frames})[0]  # type: ignore[no-any-return]

    return run, {"backend": "onnxruntime", "how": "ONNX ops at the graph input", "options": options}
