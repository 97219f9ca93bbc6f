"""What machine this is, for runner info, the environment block of a report and ``edgeres doctor``
(torch-free).

The instruction sets that decide which precision pays off on a CPU are read from the flags the
kernel reports (/proc/cpuinfo), never assumed: machines differ from one run to the next.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from edgeres import __version__

# Instruction set -> the /proc/cpuinfo flags that show it (any one is enough).
ISA_FLAGS: dict[str, tuple[str, ...]] = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "AVX-512 VNNI": ("avx512_vnni",),
    "AVX-VNNI": ("avx_vnni",),
    "AVX-512 BF16": ("avx512_bf16",),
    "AVX-512 FP16": ("avx512_fp16",),
    "AMX-INT8": ("amx_int8",),
    "AMX-BF16": ("amx_bf16",),
    "AMX-FP16": ("amx_fp16",),
    "NEON": ("asimd", "neon"),
    "ARM dot product": ("asimddp",),
    "ARM FP16": ("asimdhp", "fphp"),
}


def cpu_name() -> str:
    """The CPU's marketing name ("AMD EPYC", "Cortex-A78AE"...), from /proc/cpuinfo where there is one."""
    value = _cpuinfo_field(("model name", "hardware", "cpu model"))
    return value or platform.processor() or platform.machine() or "CPU"


def _cpuinfo_field(names: tuple[str, ...]) -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(names):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """The feature flags of the first CPU ("flags" on x86, "Features" on ARM); empty if unreadable."""
    value = _cpuinfo_field(("flags", "features"))
    return set(value.split()) if value else set()


def instruction_sets(flags: set[str] | None = None) -> dict[str, bool]:
    """Which of the precision-deciding instruction sets (``ISA_FLAGS``) this CPU reports."""
    flags = cpu_flags() if flags is None else flags
    found = {name: any(f in flags for f in wanted) for name, wanted in ISA_FLAGS.items()}
    is_arm = found["NEON"]
    return {k: v for k, v in found.items() if v or (k.startswith(("ARM", "NEON")) == is_arm)}


def precision_notes(flags: set[str] | None = None) -> list[str]:
    """What the instruction sets mean for each precision, in words ("INT8 uses AVX-512 VNNI here")."""
    isa = instruction_sets(flags)
    has = lambda name: isa.get(name, False)
    if has("AMX-INT8"):
        int8 = "INT8 uses AMX tile multiplies here (the fastest INT8 path on a CPU)"
    elif has("AVX-512 VNNI"):
        int8 = "INT8 uses AVX-512 VNNI here (one instruction per 4-way int8 dot product)"
    elif has("AVX-VNNI"):
        int8 = "INT8 uses AVX-VNNI (256-bit) here"
    elif has("ARM dot product"):
        int8 = "INT8 uses the ARM dot-product instructions here"
    elif has("AVX2") or has("NEON"):
        int8 = "INT8 has no VNNI/dot-product instructions here: expect ~2-3x FP32, not 4x"
    else:
        int8 = "INT8: no SIMD int8 instructions found"
    if has("AMX-BF16"):
        bf16 = "BF16 uses AMX here: usually faster than FP32"
    elif has("AVX-512 BF16"):
        bf16 = ("BF16 uses AVX-512 BF16 dot products here (no AMX): may be no faster than FP32; "
                "OpenVINO may run an FP32 IR in bf16 unless told f32")
    else:
        bf16 = "BF16: no native support here (runtimes refuse it or emulate it in FP32)"
    if has("AMX-FP16") or has("AVX-512 FP16") or has("ARM FP16"):
        fp16 = "FP16 arithmetic instructions are present (a runtime may still execute f32: check the exec column)"
    else:
        fp16 = "FP16: no native arithmetic here (an fp16 model executes in FP32)"
    return [int8, bf16, fp16]


def describe_cpu(flags: set[str] | None = None) -> dict[str, object]:
    """Name, logical CPUs, instruction sets and what they mean: for doctor and every report."""
    isa = instruction_sets(flags)
    return {"cpu": cpu_name(), "logical_cpus": usable_cpus(),
            "instruction_sets": [k for k, v in isa.items() if v],
            "missing": [k for k, v in isa.items() if not v], "precision_notes": precision_notes(flags),
            "frequency": frequency_policy()}


def physical_cores() -> int:
    """Physical cores this process may use: what ONNX Runtime and OpenVINO start one thread per
    by default. Counts (package, core) pairs in /proc/cpuinfo, capped by the CPU affinity."""
    visible = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores: set[tuple[str, str]] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            package = ""
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "physical id":
                    package = value.strip()
                elif key.strip() == "core id":
                    cores.add((package, value.strip()))
    except OSError:
        pass
    return max(1, min(len(cores) or visible, visible))


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
        "cpu_features": describe_cpu(),
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


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cpu_mhz() -> float | None:
    """The highest clock the CPU reports: cpufreq's maximum where readable, else /proc/cpuinfo's current MHz."""
    maximum = _read(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"))
    if maximum and maximum.isdigit():
        return int(maximum) / 1000.0
    value = _cpuinfo_field(("cpu mhz",))
    try:
        return float(value) if value else None
    except ValueError:
        return None


def frequency_policy() -> dict[str, object]:
    """CPU frequency governor and turbo/boost state where the kernel exposes them (None where not: VMs)."""
    governor = _read(Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"))
    no_turbo = _read(Path("/sys/devices/system/cpu/intel_pstate/no_turbo"))
    boost = _read(Path("/sys/devices/system/cpu/cpufreq/boost"))
    turbo = (no_turbo == "0") if no_turbo in ("0", "1") else (boost == "1") if boost in ("0", "1") else None
    return {"governor": governor, "turbo": turbo, "mhz": cpu_mhz()}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


# The INT8 peak: MACs per cycle per core x cores x clock. One VPDPBUSD does 4 u8*s8 MACs per
# 32-bit lane: 64 per 512-bit (zmm) instruction, 32 per 256-bit (ymm) one. How many issue per
# cycle depends on the core, not on the flags: by vendor and family where known, else the most
# any core with those flags issues (so the peak stays an upper bound). An AMD CPU family ->
# (512-bit VNNI instructions per cycle, why).
AMD_VNNI_ZMM_PER_CYCLE = {
    25: (1, "Zen 4 double-pumps 512-bit VPDPBUSD over its 256-bit pipes: 1 zmm/cycle"),
    26: (2, "Zen 5 has full 512-bit datapaths: 2 VPDPBUSD zmm/cycle (mobile Zen 5 double-pumps: half)"),
}
# The highest boost clock any part of the family ships with (MHz): where the core's own maximum is
# unreadable (a VM), the peak at this clock gives the low end of the fraction.
FAMILY_TOP_BOOST_MHZ = {("AuthenticAMD", 25): 5700.0, ("AuthenticAMD", 26): 5700.0}


def cpu_clock() -> tuple[float | None, str]:
    """The clock to count a peak at, and where it came from: cpufreq's maximum where the kernel
    exposes it, else the clock measured by a chain of dependent adds (``edgeres.clockprobe``), else
    /proc/cpuinfo's MHz (on a VM the nominal clock: the core may boost higher)."""
    from edgeres.clockprobe import measure_clock_mhz

    maximum = _read(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"))
    if maximum and maximum.isdigit():
        return int(maximum) / 1000.0, "max"
    try:
        nominal = float(_cpuinfo_field(("cpu mhz",)) or "")
    except ValueError:
        nominal = None
    measured = measure_clock_mhz(nominal_mhz=nominal)
    if measured:
        return measured, "measured"
    return (nominal, "nominal") if nominal else (None, "unknown")


def int8_macs_per_cycle(isa: dict[str, bool], vendor: str | None, family: int | None) -> tuple[int, str] | None:
    """INT8 MACs per cycle per core on the fastest INT8 instructions the CPU reports, and why."""
    if isa.get("AMX-INT8"):
        return 1024, "AMX TMUL: 1024 int8 MACs/cycle/core"
    if isa.get("AVX-512 VNNI"):
        if vendor == "AuthenticAMD" and family in AMD_VNNI_ZMM_PER_CYCLE:
            per_cycle, why = AMD_VNNI_ZMM_PER_CYCLE[family]
        elif vendor == "GenuineIntel":
            per_cycle, why = 2, ("Intel AVX-512 VNNI on 2 FMA ports: 2 VPDPBUSD zmm/cycle (parts with one "
                                 "512-bit FMA port do half)")
        else:
            per_cycle, why = 2, "AVX-512 VNNI, core unknown: at most 2 VPDPBUSD zmm/cycle assumed"
        return 64 * per_cycle, f"{why} x 64 MACs"
    if isa.get("AVX-VNNI"):
        return 64, "AVX-VNNI (256-bit): at most 2 VPDPBUSD ymm/cycle x 32 MACs"
    if isa.get("AVX2"):
        return 32, "AVX2 without VNNI: VPMADDUBSW + VPMADDWD on 2 multiply ports, 32 MACs/cycle at most"
    return None


def int8_peak(cores: int | None = None, flags: set[str] | None = None, vendor: str | None = None,
              family: int | None = None, clock: tuple[float | None, str] | None = None) -> dict[str, object] | None:
    """The CPU's INT8 peak in MAC/s from what it reports: MACs/cycle/core x cores x clock, with the
    formula and its assumptions. ``clock_source`` "max" or "measured" makes it an upper bound;
    "nominal" (neither readable nor measurable) may undercount a boosting core, so a fraction of it
    is an upper estimate: ``peak_at_top_boost`` then gives the other end, where the family's top
    boost clock is known."""
    vendor = vendor if vendor is not None else _cpuinfo_field(("vendor_id",))
    if family is None:
        found = _cpuinfo_field(("cpu family",))
        family = int(found) if found and found.isdigit() else None
    mhz, source = clock or cpu_clock()
    rate = int8_macs_per_cycle(instruction_sets(flags), vendor, family)
    if rate is None or not mhz:
        return None
    macs, basis = rate
    cores = cores or physical_cores()
    peak = macs * cores * mhz * 1e6
    top = FAMILY_TOP_BOOST_MHZ.get((vendor or "", family or -1)) if source == "nominal" else None
    clock_note = {"max": "the cores' maximum clock (cpufreq)",
                  "measured": "the clock a core ran a chain of dependent adds at (one per cycle), cpufreq "
                              "being unreadable: a core may clock lower under wide SIMD, so the peak is an "
                              "upper bound",
                  "nominal": "the nominal clock (/proc/cpuinfo; the maximum is unreadable here): the cores may "
                             "boost higher, so the peak may be low and a fraction of it an upper estimate"}[source]
    return {"macs_per_second": peak, "macs_per_cycle_per_core": macs, "cores": cores, "mhz": mhz,
            "clock_source": source, "vendor": vendor, "family": family, "basis": basis,
            "assumptions": f"{basis}; clock: {clock_note}",
            "peak_at_top_boost": None if top is None else macs * cores * top * 1e6, "top_boost_mhz": top,
            "formula": f"{macs} MACs/cycle x {cores} cores x {mhz:.0f} MHz ({source}) = {peak / 1e9:.0f} GMAC/s"}
