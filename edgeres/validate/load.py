"""What else used the CPU while a figure was measured: sampled before and during every measurement.

Oversubscribed cores wreck CPU timings (a ResNet-50 reads 20x slower with a neighbour busy on the
same two cores), so every latency and throughput figure carries the load it was taken under and a
warning when the machine was busy. Linux only (/proc); elsewhere the fields are None.

"Other processes" = all busy CPU time (/proc/stat) minus this process's own (/proc/self/stat,
every thread, and children it waited for): what a neighbour, not the model, used. Steal time is what the hypervisor gave to
other guests.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from edgeres.hostinfo import frequency_policy, usable_cpus

# Busy when other processes used more than this share of the CPUs, or the hypervisor stole more.
BUSY_OTHERS_SHARE = 0.10
BUSY_STEAL_SHARE = 0.05
BEFORE_WINDOW_S = 0.25


def _ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


def _machine_times() -> tuple[float, float, float] | None:
    """(busy, steal, total) CPU ticks since boot over all CPUs, from /proc/stat's first line."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            values = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0.0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + idle + iowait + steal


def _own_ticks() -> float | None:
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime + stime of every thread, + cutime + cstime of children already waited for (a
        # benchmarked subprocess is part of the measurement, not a neighbour)
        return sum(float(v) for v in fields[11:15])
    except (OSError, IndexError, ValueError):
        return None


def loadavg() -> list[float] | None:
    try:
        return [float(v) for v in open("/proc/loadavg", encoding="ascii").read().split()[:3]]
    except (OSError, ValueError):
        return None


@dataclass
class LoadSample:
    """The CPU's load over one window. ``others_cpus``: CPUs' worth of time other processes used."""

    seconds: float
    cpus: int
    loadavg: list[float] | None
    others_cpus: float | None
    steal_share: float | None
    busy: bool = False

    def describe(self) -> str:
        parts = []
        if self.others_cpus is not None:
            parts.append(f"other processes used {self.others_cpus:.2f} of {self.cpus} CPUs")
        if self.steal_share and self.steal_share >= 0.005:
            parts.append(f"steal {100 * self.steal_share:.0f}%")
        if self.loadavg:
            parts.append(f"load average {self.loadavg[0]:.2f}")
        return ", ".join(parts) or "load not readable"


class LoadMonitor:
    """Start before a measurement, ``stop()`` after it: the load over that window."""

    def __init__(self) -> None:
        self.cpus = usable_cpus()
        self.start = time.perf_counter()
        self._machine = _machine_times()
        self._own = _own_ticks()

    def stop(self) -> LoadSample:
        seconds = time.perf_counter() - self.start
        machine, own = _machine_times(), _own_ticks()
        others = steal = None
        if machine and self._machine and own is not None and self._own is not None and seconds > 0:
            busy = machine[0] - self._machine[0]
            total = machine[2] - self._machine[2]
            mine = own - self._own
            others = max(0.0, (busy - mine) / _ticks() / seconds)
            steal = (machine[1] - self._machine[1]) / total if total > 0 else 0.0
        machine_cpus = os.cpu_count() or self.cpus
        sample = LoadSample(seconds=round(seconds, 3), cpus=machine_cpus, loadavg=loadavg(),
                            others_cpus=None if others is None else round(others, 3),
                            steal_share=None if steal is None else round(steal, 4))
        sample.busy = (others is not None and others > BUSY_OTHERS_SHARE * machine_cpus) or \
            (steal is not None and steal > BUSY_STEAL_SHARE)
        return sample


def sample_load(seconds: float = BEFORE_WINDOW_S) -> LoadSample:
    """The load over the next ``seconds`` (this process idle meanwhile)."""
    monitor = LoadMonitor()
    time.sleep(seconds)
    return monitor.stop()


@dataclass
class LoadRecord:
    """The load before and during one measurement, and the warning when either was busy."""

    before: LoadSample
    during: LoadSample
    frequency: dict[str, Any] = field(default_factory=dict)

    @property
    def busy(self) -> bool:
        return self.before.busy or self.during.busy

    @property
    def warning(self) -> str | None:
        if not self.busy:
            return None
        when = self.during if self.during.busy else self.before
        phase = "during" if self.during.busy else "just before"
        return (f"busy machine {phase} this measurement ({when.describe()}): the timing is inflated; "
                "measure again on a quiet machine (bench: --wait-quiet / --retries)")

    def to_dict(self) -> dict[str, Any]:
        return {"before": asdict(self.before), "during": asdict(self.during), "frequency": self.frequency,
                "busy": self.busy, "warning": self.warning}


def wait_for_quiet(timeout: float, window: float = 1.0) -> LoadSample:
    """Sample the load in ``window``-second steps until it is quiet or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    sample = sample_load(min(window, max(timeout, BEFORE_WINDOW_S)))
    while sample.busy and time.monotonic() < deadline:
        sample = sample_load(window)
    return sample


def measure_under_load(fn: Any, before: LoadSample | None = None) -> tuple[Any, LoadRecord]:
    """Call ``fn()`` with the load sampled just before and all through it."""
    before = before or sample_load()
    monitor = LoadMonitor()
    result = fn()
    return result, LoadRecord(before=before, during=monitor.stop(), frequency=frequency_policy())
