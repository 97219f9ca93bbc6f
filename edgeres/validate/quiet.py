"""``bench`` on a shared machine: wait for a quiet CPU out loud, keep the quietest of several
attempts, and state the load of every figure (quiet ones too, so that "quiet" and "not sampled"
read differently).

``edgeres.validate.load`` samples the load; this module decides what ``bench`` does about it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from edgeres.table import counted
from edgeres.validate.load import LoadSample, sample_load, wait_for_quiet

T = TypeVar("T")
Say = Callable[[str], None]


@dataclass
class Wait:
    """One ``--wait-quiet``: how long it could wait, how long it did, and whether the CPU got quiet."""

    limit_s: float
    waited_s: float
    quiet: bool
    others_cpus: float | None  # other processes' CPUs at the last sample
    cpus: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wait_out_loud(limit_s: float, say: Say) -> Wait:
    """Wait up to ``limit_s`` seconds for a quiet CPU, saying what it waits for and how it ended."""
    start = time.monotonic()
    first = last = sample_load(min(1.0, limit_s))
    if first.busy:
        say(f"waiting up to {limit_s:g} s for a quiet CPU: others use {_others(first)}")
        left = limit_s - (time.monotonic() - start)
        if left > 0:
            last = wait_for_quiet(left)
    waited = time.monotonic() - start
    if last.busy:
        say(f"still busy after {waited:.0f} s ({last.describe()}): timing anyway, the figure is marked busy")
    elif first.busy:
        say(f"quiet after {waited:.0f} s ({last.describe()})")
    else:
        say(f"the CPU is quiet ({last.describe()})")
    return Wait(limit_s=limit_s, waited_s=round(waited, 2), quiet=not last.busy, others_cpus=last.others_cpus,
                cpus=last.cpus)


def _others(sample: LoadSample) -> str:
    return "?" if sample.others_cpus is None else f"{sample.others_cpus:.2f} of {sample.cpus} CPUs"


def attempt_load(loads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What one attempt's figures were timed under: busy when any was, and the other processes'
    CPUs summed over its figures (during each), the quietness the attempts are ranked by."""
    others = [(load.get("during") or {}).get("others_cpus") for load in loads]
    return {"busy": any(load.get("busy") for load in loads),
            "others_cpus": round(sum(o for o in others if o is not None), 3)}


def quietest(measure: Callable[[], T], loads_of: Callable[[T], Sequence[dict[str, Any]]], *, retries: int,
             wait_s: float, say: Say) -> tuple[T, dict[str, Any]]:
    """Call ``measure()`` (after waiting for quiet, when ``wait_s``) until a measurement is not
    busy or ``retries`` more were taken; keep the quietest: a quiet one over a busy one, then the
    least other-process CPU. Returns it and the record of every attempt (for the JSON)."""
    tries: list[dict[str, Any]] = []
    kept: tuple[T, dict[str, Any]] | None = None
    for attempt in range(1, retries + 2):
        wait = wait_out_loud(wait_s, say) if wait_s else None
        measured = measure()
        load = {"attempt": attempt, **attempt_load(loads_of(measured)), "wait": wait.to_dict() if wait else None}
        tries.append(load)
        if kept is None or (load["busy"], load["others_cpus"]) < (kept[1]["busy"], kept[1]["others_cpus"]):
            kept = measured, load
        if not load["busy"]:
            break
        if attempt <= retries:
            say(f"attempt {attempt} was busy (other processes used {load['others_cpus']:.2f} CPUs over its "
                f"figures): measuring again, {retries + 1 - attempt} left")
    assert kept is not None
    record = {"attempts": len(tries), "kept_attempt": kept[1]["attempt"], "busy": kept[1]["busy"],
              "wait": kept[1]["wait"], "tries": tries}
    return kept[0], record


def load_line(load: dict[str, Any]) -> str:
    """One figure's load in words, quiet or not: "other processes used 0.02 of 2 CPUs, load average
    1.20 (quiet)"; "not sampled" when the figure carries none."""
    during = load.get("during") if load else None
    if not during:
        return "not sampled"
    sample = LoadSample(**during)
    if load.get("busy"):
        state = "busy" if sample.busy else "busy just before"
    else:
        state = "quiet"
    return f"{sample.describe()} ({state})"


def latency_mode(info: dict[str, Any]) -> str:
    """How the latency figures ran, as benchmark_app prints it: "LATENCY hint, 1 stream, 2 threads"."""
    parts = []
    if info.get("performance_hint"):
        parts.append(f"{info['performance_hint']} hint")
    if info.get("streams"):
        parts.append(counted(info["streams"], "stream"))
    if info.get("execution_mode"):
        parts.append(f"{info['execution_mode']} execution")
    if info.get("threads") is not None:
        parts.append(counted(info["threads"], "thread"))
    return ", ".join(parts) or "the backend's defaults"
