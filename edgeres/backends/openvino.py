"""OpenVINO: Intel and x86 CPUs.

Build: FP32 ONNX -> ``openvino.convert_model`` -> IR (``model.xml`` + ``model.bin``) for
fp32 / bf16 / fp16, or INT8 through NNCF (``nncf.quantize``, or
``nncf.quantize_with_accuracy_control`` when a validation set and an accuracy budget are
given), or INT8 from an explicitly quantized (Q/DQ) ONNX.

Precision honesty: OpenVINO's CPU plugin picks an inference precision by itself (bf16 on
CPUs that have it, even for an "FP32" IR) and silently ignores a hint the CPU cannot honour.
edgeres therefore sets ``INFERENCE_PRECISION_HINT`` explicitly for every precision, refuses
bf16/fp16 where the device does not report the capability, reads the hint back from the
compiled model, and records the precision each layer actually executes in (the runtime
model's ``runtimePrecision``) in the artifact metadata and in ``runner.info``.

Only ``openvino`` (and ``nncf`` for INT8 calibration) are imported, lazily: the module
imports without torch or OpenVINO installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgeres.artifact import Artifact
from edgeres.backends.base import Availability, Backend, BuildSpec
from edgeres.backends.openvino_build import build_ir
from edgeres.backends.openvino_device import (
    OPTIONS,
    PRECISION_HINT,
    _compile,
    _ov,
    check_precision_supported,
    config_for,
    device_capabilities,
)
from edgeres.backends.openvino_runner import OpenVINORunner
from edgeres.errors import EdgeresError
from edgeres.fileio import sha256_file
from edgeres.optional import version_of

__all__ = ["BACKEND", "OPTIONS", "OpenVINOBackend", "OpenVINORunner", "_compile", "config_for",
           "device_capabilities", "sha256_file"]


class OpenVINOBackend(Backend):
    name = "openvino"
    options = OPTIONS
    # the inference precision is set explicitly at compile time and needs the device capability
    requirement_keys = ("device", "inference_precision_hint", "device_capabilities")
    python_packages = ("numpy", "pillow", "openvino")

    def int8_placement(self, target: Any) -> str | None:
        """NNCF calibrates INT8 here, unless the target asks for the Q/DQ ONNX (TensorRT's placement,
        where residual Adds fuse into the convolutions)."""
        return "tensorrt" if target.options.get("int8_source") == "qdq-onnx" else None

    def available(self) -> Availability:
        version = version_of("openvino")
        if version is None:
            return Availability(False, "openvino is not installed: pip install 'edgeres[openvino]'")
        import openvino as ov

        core = ov.Core()
        caps = device_capabilities(core, "CPU") if "CPU" in core.available_devices else []
        return Availability(True, version=version, details={
            "devices": ",".join(core.available_devices), "cpu_capabilities": ",".join(caps),
            "nncf": version_of("nncf") or "not installed",
        })

    def unsupported(self, precision: str, target: Any) -> str | None:
        """bf16/fp16 on a device without them (OpenVINO would silently run f32), else None."""
        hint = PRECISION_HINT.get(precision, "f32")
        core = _ov().Core()
        try:
            check_precision_supported(core, str(target.options.get("device", "CPU")), hint, precision)
        except EdgeresError as exc:
            return str(exc).split(": ", 1)[-1]
        return None

    # build ------------------------------------------------------------------------------------
    def build(self, graph: Path, spec: BuildSpec) -> Artifact:
        """ONNX (fp32, or Q/DQ for int8) -> OpenVINO IR ``spec.out_dir/model.xml`` (+ .bin, + .json);
        see ``openvino_build.build_ir``."""
        return build_ir(graph, spec)

    def load_frames(self, artifact: Artifact, spec: Any, order: str, shape: tuple[int, int, int, int],
                    threads: int | None = None) -> tuple[Any, dict[str, Any]]:
        """The IR with a PrePostProcessor in front: OpenVINO compiles the frame input into the model."""
        import openvino as ov

        from edgeres.export.frame_input import openvino_frame_model

        core = ov.Core()
        model = core.read_model(str(artifact.path))
        n, size = shape[0], spec.crop
        model.reshape([n, 3, size, size] if spec.layout == "NCHW" else [n, size, size, 3])
        config = config_for(artifact.metadata, threads=threads)
        compiled = core.compile_model(openvino_frame_model(model, spec, order),
                                      str(artifact.metadata.get("device", "CPU")), config)
        request = compiled.create_infer_request()

        def run(frames: Any) -> Any:
            request.infer({0: frames}, share_inputs=True)
            return request.get_output_tensor(0).data.copy()

        return run, {"backend": self.name, "how": "PrePostProcessor", "config": config}

    def load(self, artifact: Artifact | str | os.PathLike[str], **options: Any) -> OpenVINORunner:
        if not isinstance(artifact, Artifact):
            artifact = Artifact.load(artifact)
        return OpenVINORunner(artifact, **options)


BACKEND = OpenVINOBackend()
