"""What machine this is, for runner info and reports (torch-free)."""

from __future__ import annotations

import platform


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
