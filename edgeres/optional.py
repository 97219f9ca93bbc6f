"""Import heavy optional packages with a message that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgeres.errors import EdgeresError

# package to import -> the pip extra that provides it
EXTRAS = {
    "onnxruntime": "onnxruntime",
    "openvino": "openvino",
    "nncf": "build",
    "onnx": "build",
    "ray": "fleet",
    "tensorrt": "tensorrt",
    "torch": "build",
    "safetensors": "build",
    "PIL": "core",
    "sklearn": "demo",
    "skimage": "demo",
    "matplotlib": "report",
    "onnxconverter_common": "kit",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise an ``EdgeresError`` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS.get(module.split(".")[0], module)
        raise EdgeresError(
            f"{purpose} needs the Python package '{module}', which is not installed "
            f"({exc}). Install it with: pip install 'edgeres[{extra}]'"
        ) from None


def version_of(module: str) -> str | None:
    """The installed version of ``module``, or None when it does not import."""
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken install is "not available"
        return None
    return str(getattr(mod, "__version__", "unknown"))
