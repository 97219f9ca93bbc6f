"""One module per backend, each behind the small interface in ``base``.

Backend modules import their heavy package lazily, so listing backends (doctor,
targets) works on a machine that has none of them installed.
"""

from __future__ import annotations

import importlib

from edgeres.backends.base import Artifact, Availability, Backend, BatchProfile, BuildSpec, Runner
from edgeres.errors import EdgeresError

BACKEND_MODULES = {
    "onnxruntime": "edgeres.backends.onnxruntime",
    "openvino": "edgeres.backends.openvino",
    "tensorrt": "edgeres.backends.tensorrt",
}


def get_backend(name: str) -> Backend:
    """The backend object named ``name`` (each module exposes it as ``BACKEND``)."""
    if name not in BACKEND_MODULES:
        raise EdgeresError(f"unknown backend '{name}': choose from {', '.join(BACKEND_MODULES)}")
    return importlib.import_module(BACKEND_MODULES[name]).BACKEND  # type: ignore[no-any-return]


__all__ = ["BACKEND_MODULES", "Artifact", "Availability", "Backend", "BatchProfile", "BuildSpec", "Runner", "get_backend"]
