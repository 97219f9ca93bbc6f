"""What a device kit records about the machine before it builds: release, versions, power, clocks.

A latency figure from a Jetson means little without its power mode and whether the clocks
were locked (``sudo jetson_clocks``): with DVFS the GPU clock follows the load and the same
engine reads slower or noisier. So ``edgeres kit build`` reads, without root and without
failing where a source is missing (a desktop GPU has no nvpmodel):

- the L4T release from ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 4.3, ...``)
  and the JetPack it ships with; the board from ``/proc/device-tree/model``;
- the power mode from ``nvpmodel -q`` (``NV Power Mode: MAXN`` then the mode id);
- the clock state from ``jetson_clocks --show`` where it runs (it needs root), else from the
  GPU's devfreq node in sysfs: locked when the minimum frequency equals the maximum;
- the CUDA runtime and driver versions (cuda-python, else ``/usr/local/cuda/version.json``).

TensorRT version, compute capability and DLA count come from the TensorRT backend; they are
merged in by ``device_facts``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

# L4T release -> JetPack (NVIDIA's JetPack archive); the longest matching prefix wins.
JETPACK = {
    (32, 7): "4.6.x", (35, 1): "5.0.2", (35, 2): "5.1", (35, 3): "5.1.1", (35, 4): "5.1.2", (35, 5): "5.1.3",
    (35, 6): "5.1.4", (36, 2): "6.0 DP", (36, 3): "6.0", (36, 4): "6.1", (36, 4, 3): "6.2", (36, 4, 4): "6.2.1",
    (38, 2): "7.0", (38, 4): "7.2",
}
GPU_DEVFREQ_NAMES = ("gpu", "ga10b", "gv11b", "gp10b", "gb10b")

Runner = Callable[[list[str]], str | None]


def run_command(argv: list[str]) -> str | None:
    """stdout of ``argv``, or None when it is missing, fails or hangs."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").replace("\0", "").strip()
    except OSError:
        return None


def parse_l4t(text: str) -> dict[str, Any] | None:
    """'# R36 (release), REVISION: 4.3, ...' -> {"l4t": "36.4.3", "jetpack": "6.2"}."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not m:
        return None
    parts = (int(m.group(1)), *(int(p) for p in m.group(2).split(".") if p))
    best = max((k for k in JETPACK if parts[: len(k)] == k), key=len, default=None)
    return {"l4t": ".".join(map(str, parts)), "jetpack": JETPACK[best] if best else None}


def parse_nvpmodel(text: str) -> dict[str, Any] | None:
    """'NV Power Mode: MAXN\\n0' -> {"name": "MAXN", "id": 0}."""
    m = re.search(r"NV Power Mode:\s*(\S+)", text)
    if not m:
        return None
    ids = re.findall(r"^\s*(\d+)\s*$", text, flags=re.MULTILINE)
    return {"name": m.group(1), "id": int(ids[0]) if ids else None}


def parse_jetson_clocks(text: str) -> dict[str, Any] | None:
    """The GPU line of ``jetson_clocks --show``: 'GPU MinFreq=... MaxFreq=... CurrentFreq=...'."""
    m = re.search(r"^GPU\s+MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)", text, flags=re.MULTILINE)
    if not m:
        return None
    lo, hi, cur = (int(g) for g in m.groups())
    return {"source": "jetson_clocks --show", "gpu_min_hz": lo, "gpu_max_hz": hi, "gpu_cur_hz": cur,
            "locked": lo == hi}


def gpu_devfreq(sys_root: Path) -> dict[str, Any] | None:
    """The GPU's devfreq node: min/max/current frequency; locked when min == max."""
    base = sys_root / "class" / "devfreq"
    if not base.is_dir():
        return None
    for node in sorted(base.iterdir()):
        if not any(name in node.name.lower() for name in GPU_DEVFREQ_NAMES):
            continue
        values = {k: _read(node / f"{k}_freq") for k in ("min", "max", "cur")}
        if not all(v and v.isdigit() for v in values.values()):
            continue
        lo, hi, cur = (int(str(values[k])) for k in ("min", "max", "cur"))
        return {"source": str(node), "gpu_min_hz": lo, "gpu_max_hz": hi, "gpu_cur_hz": cur, "locked": lo == hi}
    return None


def cuda_versions(cuda_root: Path = Path("/usr/local/cuda")) -> dict[str, Any]:
    """CUDA runtime and driver versions: from cuda-python where it imports, else the toolkit's version.json."""
    out: dict[str, Any] = {}
    try:
        import importlib

        try:
            rt: Any = importlib.import_module("cuda.bindings.runtime")
        except ImportError:
            rt = importlib.import_module("cuda.cudart")
        for key, call in (("cuda_runtime", rt.cudaRuntimeGetVersion), ("cuda_driver", rt.cudaDriverGetVersion)):
            err, value = call()
            if int(err) == 0:
                out[key] = f"{int(value) // 1000}.{int(value) % 1000 // 10}"
    except (ImportError, AttributeError):
        pass
    if "cuda_runtime" not in out:
        text = _read(cuda_root / "version.json")
        if text:
            try:
                out["cuda_toolkit"] = json.loads(text).get("cuda", {}).get("version")
            except ValueError:
                pass
    return out


def probe(etc: Path = Path("/etc"), proc: Path = Path("/proc"), sys_root: Path = Path("/sys"),
          run: Runner = run_command, cuda_root: Path = Path("/usr/local/cuda")) -> dict[str, Any]:
    """Release, power mode and clock state of this machine; a key is None where it cannot be read."""
    release = _read(etc / "nv_tegra_release")
    l4t = parse_l4t(release) if release else None
    board = _read(proc / "device-tree" / "model")
    nvp_text = run(["nvpmodel", "-q"])
    clocks_text = run(["jetson_clocks", "--show"])
    clocks = (parse_jetson_clocks(clocks_text) if clocks_text else None) or gpu_devfreq(sys_root)
    facts: dict[str, Any] = {
        "board": board, "l4t": l4t["l4t"] if l4t else None, "jetpack": l4t["jetpack"] if l4t else None,
        "nvpmodel": parse_nvpmodel(nvp_text) if nvp_text else None,
        "clocks": clocks, "clocks_locked": clocks["locked"] if clocks else None,
    }
    facts.update(cuda_versions(cuda_root))
    return facts


def clock_note(facts: dict[str, Any]) -> str | None:
    """The warning a report carries when its latency comes from unlocked (or unknown) Jetson clocks."""
    if facts.get("l4t") is None:
        return None  # not a Jetson: desktop GPUs boost on their own, nothing to lock
    if facts.get("clocks_locked") is True:
        return None
    state = "unlocked" if facts.get("clocks_locked") is False else "unknown (no jetson_clocks or devfreq readable)"
    mode = (facts.get("nvpmodel") or {}).get("name") or "unknown"
    return (f"clocks {state} (power mode {mode}): latency varies with DVFS; for stable figures run "
            "'sudo nvpmodel -m 0 && sudo jetson_clocks' and build again")


def device_facts(tensorrt: str, gpu: dict[str, Any], dla_cores: int, **probe_args: Any) -> dict[str, Any]:
    """Everything kit-report.json's environment says about the device."""
    facts = probe(**probe_args)
    facts.update(tensorrt=tensorrt, gpu=gpu, compute_capability=gpu.get("compute_capability"), dla_cores=dla_cores)
    return facts


__all__ = ["JETPACK", "clock_note", "cuda_versions", "device_facts", "gpu_devfreq", "parse_jetson_clocks",
           "parse_l4t", "parse_nvpmodel", "probe", "run_command"]
