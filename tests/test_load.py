"""A measurement taken while other processes load the CPU says so (no timing asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from edgeres.validate import format_latency, measure_latency
from edgeres.validate.load import LoadMonitor, LoadRecord, LoadSample

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="load sampling reads /proc")


class SleepyRunner:
    """Waits instead of computing, so the hogs get the CPUs."""

    def __init__(self) -> None:
        self.info = {"threads": 1, "timed": "fake"}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(0.01)
        return batch


@pytest.fixture
def cpu_hogs():
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    time.sleep(0.5)
    yield hogs
    for hog in hogs:
        hog.kill()
        hog.wait()


def test_busy_machine_is_recorded_and_warned_about(cpu_hogs):
    result = measure_latency(SleepyRunner(), (3, 4, 4), (1,), min_runs=5, min_seconds=1.0, warmup=1)[0]
    assert result.load["during"]["others_cpus"] > 0.5 and result.load["busy"]
    assert "busy machine" in result.load_warning
    assert "WARNING batch 1: busy machine" in format_latency([result])


def test_load_sample_counts_other_processes_not_this_one():
    monitor = LoadMonitor()
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:  # this process busy: not "other processes"
        pass
    sample = monitor.stop()
    assert sample.others_cpus is not None and sample.others_cpus < sample.cpus
    assert sample.steal_share is not None and 0.0 <= sample.steal_share <= 1.0


def test_warning_names_the_phase_and_what_was_seen():
    quiet = LoadSample(seconds=1, cpus=2, loadavg=[0.1, 0, 0], others_cpus=0.0, steal_share=0.0)
    busy = LoadSample(seconds=1, cpus=2, loadavg=[3.0, 0, 0], others_cpus=1.5, steal_share=0.0, busy=True)
    assert LoadRecord(before=quiet, during=quiet).warning is None
    text = LoadRecord(before=busy, during=quiet).warning
    assert "just before" in text and "1.50 of 2 CPUs" in text
