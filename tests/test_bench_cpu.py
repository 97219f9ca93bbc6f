"""scripts/bench_cpu.py's INT8-peak verdict says met, NOT met or undecided honestly (no timing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")  # the MAC count comes from edgeres.models


def _bench_cpu():
    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_cpu.py"
    spec = importlib.util.spec_from_file_location("bench_cpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _peak(source: str, top: float | None) -> dict:
    per_second = 128 * 2 * 2000e6
    return {"macs_per_second": per_second, "clock_source": source, "formula": "128 MACs/cycle x ...",
            "peak_at_top_boost": None if top is None else per_second * top / 2000.0, "top_boost_mhz": top,
            "assumptions": "test"}


@pytest.mark.parametrize(("source", "top", "p50_ms", "verdict"), [
    ("max", None, 5.0, "met"),          # ResNet-18: 1.81 GMAC / 5 ms = 363 GMAC/s of 512: 71%
    ("max", None, 8.0, "NOT met"),      # 44%
    ("measured", None, 5.0, "met"),     # a measured clock is as decisive as cpufreq's maximum
    ("max", None, 3.0, "undecided"),    # 118%: the peak behind it is wrong, never "met"
    ("nominal", 5700.0, 5.0, "undecided"),  # 71% at the nominal clock, 32% at the top boost
    ("nominal", 2100.0, 5.0, "met"),    # 68% even at the top boost
])
def test_int8_peak_verdict_counts_the_clock_it_knows(monkeypatch, source, top, p50_ms, verdict):
    bench = _bench_cpu()
    monkeypatch.setattr(bench.hostinfo, "int8_peak", lambda: _peak(source, top))
    rows = [{"config": "ov-int8", "what": "latency p50 ms, batch 1", "edgeres": p50_ms}]
    row = bench.int8_peak_row(rows, 18)
    assert row["verdict"].startswith(verdict)
    assert (row["fraction_at_top_boost"] is None) == (top is None)
