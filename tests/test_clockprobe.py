"""The measured clock: a chain of dependent adds, one per cycle, timed (no timing asserted beyond sanity)."""

from __future__ import annotations

import platform
import sys

import pytest

from edgeres.clockprobe import ADDS_PER_LOOP, _chain, measure_clock_mhz


def test_the_chain_is_a_counted_loop_that_returns_its_add_count():
    code = _chain(5)
    assert code.startswith(bytes.fromhex("48b9") + (5).to_bytes(8, "little")) and code.endswith(b"\xc3")
    assert code.count(bytes.fromhex("4801d0")) == ADDS_PER_LOOP         # add rax, rdx: no immediate to fold
    assert bytes.fromhex("4883c001") not in code                         # add rax, 1 would fold on newer Intel


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="x86-64 Linux only")
def test_the_measured_clock_is_a_plausible_core_clock():
    mhz = measure_clock_mhz(loops=20_000, runs=3)
    assert mhz is None or 300 < mhz < 10_000     # None: this kernel refuses executable memory


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="x86-64 Linux only")
def test_a_clock_far_above_the_nominal_one_is_not_believed():
    assert measure_clock_mhz(loops=20_000, runs=3, nominal_mhz=10.0) is None


def test_other_platforms_get_no_figure(monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert measure_clock_mhz() is None
