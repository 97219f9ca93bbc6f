"""What a device is, and whether it can run its target: the device preflight.

Runs on the device, at ``edgeres fleet join`` (its results become the node's Ray labels)
and again at the start of every measurement (a device can change between the two: a
backend upgraded, a power mode switched). Needs neither Ray nor torch.

The *state* of a device is what changes its latencies without changing the device: power
mode, clocks locked or not, CPU frequency governor, threads. Rows measured under different
states are never compared silently (``edgeres.fleet.merge``).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeres import __version__
from edgeres.hostinfo import cpu_name

LABEL_PREFIX = "edgeres/"
SLOT = "edgeres-device"  # one per device: a measurement holds it, so two never share a device
# the CPU features that decide which kernels OpenVINO and ONNX Runtime run
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8",
             "amx_bf16", "asimddp", "i8mm", "bf16")


@dataclass
class DeviceInfo:
    name: str
    target: str
    backend: str
    model: str                                   # board, else GPU, else CPU name
    backends: dict[str, str | None]              # usable backends and their versions
    cpu: str
    cpu_flags: list[str]
    threads: int
    gpu: dict[str, Any] | None = None
    jetpack: str | None = None                   # L4T release on a Jetson
    power: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)   # why this device cannot run its target
    edgeres: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeviceInfo:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    def state(self) -> dict[str, Any]:
        """What must match for two latencies of the same device kind to be comparable."""
        return {"threads": self.threads, **self.power}

    def labels(self) -> dict[str, str]:
        """Ray node labels (Kubernetes label syntax: 63 characters of [A-Za-z0-9._-])."""
        values = {"device": self.name, "target": self.target, "backend": self.backend,
                  "backend-version": self.backends.get(self.backend) or "none", "model": self.model,
                  "edgeres": self.edgeres, "ready": "no" if self.problems else "yes"}
        return {LABEL_PREFIX + k: label_value(v) for k, v in values.items()}


def label_value(text: str) -> str:
    """``text`` as a valid Ray label value: other characters become '-', at most 63 characters."""
    value = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-._")[:63].rstrip("-._")
    return value or "unknown"


def cpu_flags() -> list[str]:
    """The instruction-set extensions in ``CPU_FLAGS`` this CPU reports (Linux /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    found: set[str] = set()
    for line in text.splitlines():
        if line.lower().startswith(("flags", "features")):
            found.update(line.split(":", 1)[1].split())
    return [f for f in CPU_FLAGS if f in found]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


def _command(*argv: str) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def power_state() -> dict[str, str]:
    """Power mode and clocks, where readable: Jetson's nvpmodel, the CPU frequency governor."""
    state: dict[str, str] = {}
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if governor:
        state["cpu_governor"] = governor
    mode = _command("nvpmodel", "-q")
    if mode:
        first = next((ln for ln in mode.splitlines() if "Power Mode" in ln), mode.splitlines()[0])
        state["power_mode"] = first.split(":", 1)[-1].strip()
    clocks = _command("jetson_clocks", "--show")
    if clocks:
        # jetson_clocks pins each CPU's MinFreq to its MaxFreq; unlocked clocks scale with load
        locked = all(m.group(1) == m.group(2) for m in re.finditer(r"MinFreq=(\d+) MaxFreq=(\d+)", clocks))
        state["clocks"] = "locked" if locked else "dynamic"
    return state


def _jetpack() -> str | None:
    text = _read("/etc/nv_tegra_release")
    if not text:
        return None
    m = re.search(r"R(\d+) \(release\), REVISION: ([\d.]+)", text)
    return f"L4T R{m.group(1)}.{m.group(2)}" if m else text.splitlines()[0][:60]


def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def preflight(target: str | None = None, name: str | None = None) -> DeviceInfo:
    """Probe this device. ``target`` defaults to the best one its usable backends offer."""
    from edgeres.backends import backend_names, get_backend
    from edgeres.errors import EdgeresError
    from edgeres.targets import get_target

    availability = {b: get_backend(b).available() for b in backend_names()}
    usable = {b: a.version for b, a in availability.items() if a.ok}
    problems: list[str] = []
    chosen = target or default_target(usable)
    try:
        t = get_target(chosen)
        chosen, backend = t.name, t.backend
    except EdgeresError as exc:
        problems.append(str(exc))
        backend = "unknown"
    if backend in availability and not availability[backend].ok:
        problems.append(f"{backend} is not usable here: {availability[backend].reason}")
    trt = availability.get("tensorrt")
    gpu = (trt.details or None) if trt is not None and trt.ok else None
    board = _read("/proc/device-tree/model")
    board = board.rstrip("\x00") if board else None
    gpu_name = gpu.get("gpu") if gpu else None
    return DeviceInfo(name=name or socket.gethostname(), target=chosen, backend=backend,
                      model=board or (str(gpu_name) if gpu_name else cpu_name()), backends=usable, cpu=cpu_name(),
                      cpu_flags=cpu_flags(), threads=_threads(), gpu=gpu, jetpack=_jetpack(), power=power_state(),
                      problems=problems)


def default_target(usable: dict[str, str | None]) -> str:
    """A TensorRT device is a Jetson or GPU; an OpenVINO one an Intel CPU; else ONNX Runtime's cpu."""
    if "tensorrt" in usable:
        return "jetson-orin" if platform.machine() == "aarch64" else "nvidia-gpu"
    if "openvino" in usable:
        return "intel-cpu"
    return "cpu"
