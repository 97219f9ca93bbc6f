"""Shared fixtures. GPU tests are marked ``gpu`` and skip cleanly where there is none."""

from __future__ import annotations

import shutil

import pytest


def _have_gpu_tensorrt() -> bool:
    try:
        import tensorrt
    except Exception:  # noqa: BLE001
        return False
    return hasattr(tensorrt, "Builder") and shutil.which("nvidia-smi") is not None


def _have_cuda() -> bool:
    """An NVIDIA GPU and a Python CUDA binding the TensorRT runner can use (cuda-python, or torch with CUDA)."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        from edgeres.backends.tensorrt import cuda_runtime

        return cuda_runtime().device_count() > 0
    except Exception:  # noqa: BLE001 - no binding, or no usable driver
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skips = {}
    if not _have_gpu_tensorrt():
        skips["gpu"] = pytest.mark.skip(reason="needs an NVIDIA GPU with TensorRT; none here")
    if not any(item.get_closest_marker("cuda") for item in items) or not _have_cuda():
        skips["cuda"] = pytest.mark.skip(reason="needs an NVIDIA GPU and cuda-python or torch with CUDA; none here")
    for item in items:
        for marker, skip in skips.items():
            if item.get_closest_marker(marker):
                item.add_marker(skip)
