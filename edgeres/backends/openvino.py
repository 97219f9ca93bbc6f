"""OpenVINO: Intel and x86 CPUs."""

from __future__ import annotations

from edgeres.backends.base import Availability
from edgeres.optional import version_of


class OpenVINOBackend:
    name = "openvino"

    def available(self) -> Availability:
        version = version_of("openvino")
        if version is None:
            return Availability(False, "openvino is not installed: pip install 'edgeres[openvino]'")
        import openvino as ov

        return Availability(True, version=version, details={"devices": ",".join(ov.Core().available_devices)})


BACKEND = OpenVINOBackend()
