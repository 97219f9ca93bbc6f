"""What every timed figure must say beside the number: whether the backend really executed the
precision, what the throughput mode was, and whether the machine was busy. Shared by the build's
rows, the summary table and report.md, so every place says it in the same words."""

from __future__ import annotations

from typing import Any

# Names a backend uses for the precision it executed, per built precision.
EXECUTED_AS = {"fp32": ("f32", "fp32"), "bf16": ("bf16",), "fp16": ("f16", "fp16"),
               "int8": ("int8", "u8", "i8")}


def execution_note(precision: str, executed: str | None) -> str | None:
    """A sentence when the backend executed something other than ``precision`` (None when it did
    execute it, or did not say). Mixed INT8 (``int8 95% / f32 5%``) counts as INT8 when INT8 leads."""
    if not executed or executed in ("unknown", "-") or precision not in EXECUTED_AS:
        return None
    text = executed.lower()
    leading = text.replace("/", " ").replace("+", " ").split()[0]  # "int8 95% / f32 5%", "int8+fp16"
    if leading in EXECUTED_AS[precision]:
        return None
    return (f"built as {precision} but the backend executed {executed}: this row is not a {precision} figure "
            f"and is never recommended as {precision}")


def executed_as_built(row: dict[str, Any]) -> bool:
    return execution_note(str(row.get("precision")), row.get("execution_precision")) is None


def footnotes(rows: list[Any]) -> list[str]:
    """One line per row for what a table cell cannot hold: throughput mode, busy machine, precision not executed.
    ``rows`` are report ``ResultRow``s (their extra dict carries these fields)."""
    lines = []
    for r in rows:
        extra = getattr(r, "extra", {}) or {}
        label = f"{r.target} {r.precision}"
        if extra.get("throughput_label"):
            lines.append(f"{label} throughput: {extra['throughput_label']}")
        if extra.get("execution_note"):
            lines.append(f"{label}: NOT EXECUTED AS BUILT: {extra['execution_note']}")
        if extra.get("load_warning"):
            lines.append(f"{label}: WARNING {extra['load_warning']}")
    return lines


def cpu_lines(env: dict[str, Any]) -> list[str]:
    """The CPU's precision-deciding instruction sets and what they mean, for report.md and doctor."""
    cpu = env.get("cpu_features") or {}
    if not cpu:
        return []
    lines = [f"instruction sets: {', '.join(cpu.get('instruction_sets') or []) or 'none found'}"
             + (f" (not: {', '.join(cpu['missing'])})" if cpu.get("missing") else "")]
    lines += list(cpu.get("precision_notes") or [])
    freq = cpu.get("frequency") or {}
    lines.append(f"frequency: governor {freq.get('governor') or 'not readable'}, turbo "
                 f"{ {True: 'on', False: 'off'}.get(freq.get('turbo'), 'not readable') }, "
                 f"{freq.get('mhz') or '?'} MHz (the kernel's current figure: on a VM the nominal clock)")
    return lines
