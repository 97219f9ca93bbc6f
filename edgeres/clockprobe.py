"""The clock a core really runs at, measured, for where the kernel does not say (a VM hides cpufreq).

A chain of dependent register-to-register adds runs at exactly one add per cycle on every x86-64
core (an add's latency is one cycle and each add waits for the one before), so timing a known
number of them gives cycles per second. Register operands, not immediates: Intel's cores from
Golden Cove on fold chains of small-immediate adds at rename, several per cycle. A figure more than
``MAX_OVER_NOMINAL`` times the nominal clock is not believed either. The chain is a few hundred bytes of machine code in an executable
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
MAX_OVER_NOMINAL = 2.5                    # no core boosts further above its nominal clock
_MOV_EDX_1 = bytes.fromhex("ba01000000")  # mov edx, 1
_ADD_RAX_RDX = bytes.fromhex("4801d0")    # add rax, rdx
_DEC_RCX = bytes.fromhex("48ffc9")        # dec rcx
_JNZ_REL32 = bytes.fromhex("0f85")        # jnz rel32
_RET = bytes.fromhex("c3")


def _chain(loops: int) -> bytes:
    """mov rcx, loops; mov edx, 1; xor eax, eax; loop: ADDS_PER_LOOP x (add rax, rdx); dec rcx; jnz loop; ret."""
    body = _ADD_RAX_RDX * ADDS_PER_LOOP + _DEC_RCX
    back = -(len(body) + len(_JNZ_REL32) + 4)
    return (bytes.fromhex("48b9") + struct.pack("<Q", loops) + _MOV_EDX_1 + bytes.fromhex("31c0")
            + body + _JNZ_REL32 + struct.pack("<i", back) + _RET)


def measure_clock_mhz(loops: int = 200_000, runs: int = 7, nominal_mhz: float | None = None) -> float | None:
    """The core clock in MHz (best of ``runs`` chains of ``loops`` x 64 adds), or None where it cannot
    run or reads implausibly far above ``nominal_mhz``."""
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
    mhz = adds / best / 1e6
    return None if nominal_mhz and mhz > MAX_OVER_NOMINAL * nominal_mhz else mhz


__all__ = ["ADDS_PER_LOOP", "MAX_OVER_NOMINAL", "measure_clock_mhz"]
