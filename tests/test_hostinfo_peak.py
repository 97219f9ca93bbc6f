"""The INT8 peak is computed from what the CPU reports (flags, vendor, family, clock), formula shown."""

from __future__ import annotations

from edgeres.hostinfo import int8_peak

VNNI = {"avx2", "avx512f", "avx512_vnni"}
MAX = (3000.0, "max")


def test_zen5_issues_two_512_bit_vnni_per_cycle():
    peak = int8_peak(cores=2, flags=VNNI, vendor="AuthenticAMD", family=26, clock=MAX)
    assert peak["macs_per_cycle_per_core"] == 128 and peak["macs_per_second"] == 128 * 2 * 3000e6
    assert peak["formula"] == "128 MACs/cycle x 2 cores x 3000 MHz (max) = 768 GMAC/s"
    assert "Zen 5" in peak["assumptions"]


def test_zen4_double_pumps_512_bit_vnni():
    peak = int8_peak(cores=4, flags=VNNI, vendor="AuthenticAMD", family=25, clock=MAX)
    assert peak["macs_per_cycle_per_core"] == 64 and "double-pumps" in peak["basis"]


def test_intel_vnni_counts_two_fma_ports_and_says_some_parts_have_one():
    peak = int8_peak(cores=2, flags=VNNI, vendor="GenuineIntel", family=6, clock=MAX)
    assert peak["macs_per_cycle_per_core"] == 128 and "one 512-bit FMA port do half" in peak["basis"]


def test_amx_beats_vnni_and_avx_vnni_beats_plain_avx2():
    assert int8_peak(cores=1, flags=VNNI | {"amx_int8"}, vendor="GenuineIntel", family=6,
                     clock=MAX)["macs_per_cycle_per_core"] == 1024
    assert int8_peak(cores=1, flags={"avx2", "avx_vnni"}, vendor="GenuineIntel", family=6,
                     clock=MAX)["macs_per_cycle_per_core"] == 64
    assert int8_peak(cores=1, flags={"avx2"}, vendor="AuthenticAMD", family=23,
                     clock=MAX)["macs_per_cycle_per_core"] == 32


def test_unknown_core_with_vnni_is_counted_at_the_most_any_core_issues():
    peak = int8_peak(cores=1, flags=VNNI, vendor="SomeVendor", family=99, clock=MAX)
    assert peak["macs_per_cycle_per_core"] == 128 and "core unknown" in peak["basis"]


def test_a_nominal_clock_is_said_and_the_family_top_boost_gives_the_other_end():
    peak = int8_peak(cores=2, flags=VNNI, vendor="AuthenticAMD", family=26, clock=(2596.0, "nominal"))
    assert peak["clock_source"] == "nominal" and "upper estimate" in peak["assumptions"]
    assert peak["peak_at_top_boost"] == 128 * 2 * 5700e6
    read_max = int8_peak(cores=2, flags=VNNI, vendor="AuthenticAMD", family=26, clock=MAX)
    assert read_max["peak_at_top_boost"] is None and "maximum clock" in read_max["assumptions"]


def test_no_simd_int8_or_no_clock_gives_no_peak():
    assert int8_peak(cores=1, flags={"sse2"}, vendor="GenuineIntel", family=6, clock=MAX) is None
    assert int8_peak(cores=1, flags=VNNI, vendor="GenuineIntel", family=6, clock=(None, "unknown")) is None


def test_a_measured_clock_is_an_upper_bound_with_no_boost_guess(monkeypatch):
    from edgeres import clockprobe, hostinfo

    monkeypatch.setattr(hostinfo, "_read", lambda path: None)               # cpufreq unreadable, as on a VM
    monkeypatch.setattr(clockprobe, "measure_clock_mhz", lambda nominal_mhz=None: 4200.0)
    assert hostinfo.cpu_clock() == (4200.0, "measured")
    peak = int8_peak(cores=2, flags=VNNI, vendor="AuthenticAMD", family=26, clock=(4200.0, "measured"))
    assert peak["peak_at_top_boost"] is None and "dependent adds" in peak["assumptions"]
    monkeypatch.setattr(clockprobe, "measure_clock_mhz", lambda nominal_mhz=None: None)   # exec memory refused
    assert hostinfo.cpu_clock()[1] in ("nominal", "unknown")
