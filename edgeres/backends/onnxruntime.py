"""ONNX Runtime: the reference backend and the generic CPU target."""

from __future__ import annotations

from edgeres.backends.base import Availability
from edgeres.optional import version_of


class ONNXRuntimeBackend:
    name = "onnxruntime"

    def available(self) -> Availability:
        version = version_of("onnxruntime")
        if version is None:
            return Availability(False, "onnxruntime is not installed: pip install 'edgeres[onnxruntime]'")
        return Availability(True, version=version)


BACKEND = ONNXRuntimeBackend()
