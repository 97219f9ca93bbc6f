"""One module per backend, each behind the one interface in ``base``, found through a registry.

Built-in backends are named here by module; a user's backend joins with
``register_backend(name, factory)`` or an ``edgeres.backends`` entry point (a factory, or
a module with ``BACKEND``). Backend modules import their heavy package lazily, so listing
backends (doctor, targets) works on a machine that has none of them installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from edgeres.artifact import Artifact, BatchProfile
from edgeres.backends.base import AccuracyControl, Availability, Backend, BuildSpec, Runner, RunnerInfo
from edgeres.errors import EdgeresError

ENTRY_POINT_GROUP = "edgeres.backends"
BUILTIN_MODULES = {
    "onnxruntime": "edgeres.backends.onnxruntime",
    "openvino": "edgeres.backends.openvino",
    "tensorrt": "edgeres.backends.tensorrt",
}
_factories: dict[str, Callable[[], Backend]] = {}
_instances: dict[str, Backend] = {}


def register_backend(name: str, factory: Callable[[], Backend]) -> None:
    """Make ``factory()`` the backend a target with ``backend = "name"`` uses."""
    _factories[name] = factory
    _instances.pop(name, None)


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def backend_names() -> list[str]:
    """Every backend a target may name: built-in, registered, and installed entry points."""
    return list(dict.fromkeys([*BUILTIN_MODULES, *_factories, *_entry_points()]))


def _create(name: str) -> Backend:
    if name in _factories:
        return _factories[name]()
    if name in BUILTIN_MODULES:
        return importlib.import_module(BUILTIN_MODULES[name]).BACKEND  # type: ignore[no-any-return]
    found = _entry_points().get(name)
    if found is None:
        raise EdgeresError(f"unknown backend '{name}': choose from {', '.join(backend_names())}")
    loaded = found.load()
    backend = getattr(loaded, "BACKEND", None) or (loaded() if callable(loaded) else loaded)
    return backend  # type: ignore[no-any-return]


def get_backend(name: str) -> Backend:
    """The backend object named ``name`` (one instance per process)."""
    if name not in _instances:
        _instances[name] = _create(name)
    return _instances[name]


def backend_for(artifact: Artifact) -> Backend:
    """The backend that runs ``artifact``: the one that built it, or one that loads its kind
    (an exported or quantized ONNX runs on the backend that declares it loads "onnx")."""
    kind = str(artifact.metadata.get("backend") or "")
    if not kind:
        raise EdgeresError(f"{artifact.sidecar} does not say which backend built {artifact.path.name}; rebuild it")
    if kind in backend_names():
        return get_backend(kind)
    for name in backend_names():
        backend = get_backend(name)
        if backend.loads(artifact):
            return backend
    raise EdgeresError(f"{artifact.path.name} was built by '{kind}', which no installed backend runs: "
                       f"choose from {', '.join(backend_names())}")


__all__ = ["BUILTIN_MODULES", "ENTRY_POINT_GROUP", "AccuracyControl", "Artifact", "Availability", "Backend",
           "BatchProfile", "BuildSpec", "Runner", "RunnerInfo", "backend_for", "backend_names", "get_backend",
           "register_backend"]
