"""What machine this is, for runner info and the environment block of a report (torch-free)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from edgeres import __version__


def cpu_name() -> str:
    """The CPU's marketing name ("AMD EPYC", "Cortex-A78AE"...), from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def _board() -> str | None:
    """The board, on Jetson and other device-tree machines ('NVIDIA Jetson AGX Orin Developer Kit')."""
    try:
        return Path("/proc/device-tree/model").read_text(errors="replace").strip("\x00\n ") or None
    except OSError:
        return None


def _gpu_name() -> str | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


def _package_version(name: str) -> str | None:
    """Version of an installed distribution without importing it (torch, nncf are slow to import)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Where the numbers were measured: CPU, GPU, board, OS, Python, backend and library versions."""
    from edgeres.optional import version_of

    backends = {name: version_of(name) for name in ("onnxruntime", "openvino", "tensorrt")}
    if backends["tensorrt"] == "unknown":  # only the type stubs: a namespace package
        backends["tensorrt"] = None
    return {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": _gpu_name(),
        "board": _board(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "edgeres": __version__,
        "backends": backends,
        "packages": {name: _package_version(name) for name in ("numpy", "onnx", "nncf", "torch")},
    }


def environment_label(env: dict[str, Any]) -> str:
    """A short name for where a report was measured: the board, else GPU, else CPU."""
    gpu = env.get("gpu")
    if isinstance(gpu, dict):  # a kit report's GPU record: {"name", "compute_capability", ...}
        gpu = gpu.get("name")
    return str(env.get("board") or gpu or env.get("cpu") or "unknown machine")
