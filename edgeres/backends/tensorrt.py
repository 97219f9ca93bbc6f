"""TensorRT: NVIDIA GPUs and Jetson."""

from __future__ import annotations

from edgeres.backends.base import Availability


class TensorRTBackend:
    name = "tensorrt"

    def available(self) -> Availability:
        try:
            import tensorrt as trt
        except ImportError:
            return Availability(False, "TensorRT is not installed (it ships with JetPack on Jetson; "
                                       "on x86 install NVIDIA's tensorrt wheel from NVIDIA's index)")
        except Exception as exc:  # noqa: BLE001 - bindings without their libraries raise other errors
            return Availability(False, f"TensorRT does not load here: {exc}")
        if not hasattr(trt, "Builder"):  # e.g. only the type stubs are installed: a namespace package
            return Availability(False, "TensorRT is not installed (only its type stubs are)")
        return Availability(True, version=trt.__version__)


BACKEND = TensorRTBackend()
