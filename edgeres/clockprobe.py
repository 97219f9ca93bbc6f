"""The clock a core really runs at, measured, for where the kernel does not say (a VM hides cpufreq).

A chain of dependent integer adds runs at exactly one add per cycle on every x86-64 core (an
add's latency is one cycle and each add waits for the one before), so timing a known number of
them gives cycles per second. The chain is a few hundred bytes of machine code in an executable
page, called through ctypes. The best of several runs counts, so a run the scheduler interrupted
does not lower the figure. Where the platform is not x86-64 Linux, or executable memory is
refused (a hardened kernel), there is no figure: the caller falls back to the nominal clock.
"""

from __future__ import annotations

import ctypes
import mmap
import platform
import struct
import sys
import time

ADDS_PER_LOOP = 64
_ADD_RAX_1 = bytes.fromhex("4883c001")    # add rax, 1
_DEC_RCX = bytes.fromhex("48ffc9")        # dec rcx
_JNZ_REL32 = bytes.fromhex("0f85")        # jnz rel32
_RET = bytes.fromhex("c3")


def _chain(loops: int) -> bytes:
    """mov rcx, loops; xor eax, eax; loop: ADDS_PER_LOOP x (add rax, 1); dec rcx; jnz loop; ret."""
    body = _ADD_RAX_1 * ADDS_PER_LOOP + _DEC_RCX
    back = -(len(body) + len(_JNZ_REL32) + 4)
    return (bytes.fromhex("48b9") + struct.pack("<Q", loops) + bytes.fromhex("31c0")
            + body + _JNZ_REL32 + struct.pack("<i", back) + _RET)


def measure_clock_mhz(loops: int = 200_000, runs: int = 7) -> float | None:
    """The core clock in MHz (best of ``runs`` chains of ``loops`` x 64 adds), or None where it cannot run."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    code = _chain(loops)
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, ValueError, AttributeError):
        return None
    try:
        page.write(code)
        anchor = ctypes.c_char.from_buffer(page)
        chain = ctypes.CFUNCTYPE(ctypes.c_uint64)(ctypes.addressof(anchor))
        best = float("inf")
        for _ in range(runs):
            start = time.perf_counter()
            adds = chain()
            best = min(best, time.perf_counter() - start)
        del chain, anchor
    finally:
        page.close()
    if adds != loops * ADDS_PER_LOOP or best <= 0:
        return None
    return adds / best / 1e6


__all__ = ["ADDS_PER_LOOP", "measure_clock_mhz"]
