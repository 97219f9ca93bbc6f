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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _have_gpu_tensorrt():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with TensorRT; none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
