"""The measured clock: a chain of dependent adds, one per cycle, timed (no timing asserted beyond sanity)."""

from __future__ import annotations

import platform
import sys

import pytest

from edgeres.clockprobe import ADDS_PER_LOOP, _chain, measure_clock_mhz


def test_the_chain_is_a_counted_loop_that_returns_its_add_count():
    code = _chain(5)
    assert code.startswith(bytes.fromhex("48b9") + (5).to_bytes(8, "little")) and code.endswith(b"\xc3")
    assert code.count(bytes.fromhex("4883c001")) == ADDS_PER_LOOP


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="x86-64 Linux only")
def test_the_measured_clock_is_a_plausible_core_clock():
    mhz = measure_clock_mhz(loops=20_000, runs=3)
    assert mhz is None or 300 < mhz < 10_000     # None: this kernel refuses executable memory


def test_other_platforms_get_no_figure(monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert measure_clock_mhz() is None
