"""Per-layer profiles for people: the stage table, the layer table, a bar plot, and the
table of what each layer costs in accuracy (INT8) and in time (FP) on this target."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeres.fileio import atomic_path
from edgeres.table import format_table


def stage_table(doc: dict[str, Any]) -> str:
    rows = [(s["stage"], s["layers"], f"{s['ms']:.3f}", f"{s.get('min_ms', s['ms']):.3f}", f"{100 * s['share']:.1f}",
             f"{100 * s['int8_share']:.0f}") for s in doc["stages"]]
    rows.append(("total", sum(s["layers"] for s in doc["stages"]), f"{doc['total_ms']:.3f}",
                 f"{sum(s.get('min_ms', s['ms']) for s in doc['stages']):.3f}", "100.0", ""))
    return format_table(["stage", "kernels", "median ms", "min ms", "% of time", "% of it in INT8"], rows,
                        align="lrrrrr")


def layer_table(doc: dict[str, Any]) -> str:
    rows = [(t["stage"], t["module"] or "-", t["op"], t["kernel"], t["precision"] or "-", f"{t['ms']:.4f}",
             "-" if t.get("min_ms") is None else f"{t['min_ms']:.4f}") for t in doc["layers"]]
    return format_table(["stage", "module", "op", "kernel", "precision", "median ms", "min ms"], rows,
                        align="lllllrr")


def heading(doc: dict[str, Any]) -> str:
    return (f"{doc['artifact']}: {doc['backend']} {doc['precision']} on {doc['device']}, batch {doc['batch']}, "
            f"{doc['threads']} threads, median of {doc['runs']} runs; per-layer sum {doc['total_ms']:.3f} ms")


def format_profile(doc: dict[str, Any], layers: bool = False) -> str:
    parts = [heading(doc), "", stage_table(doc)]
    if layers:
        parts += ["", layer_table(doc)]
    return "\n".join(parts)


def tradeoff_table(tradeoffs: Sequence[Any], with_loss: bool = True) -> str:
    """Per layer: points lost quantizing it alone, ms it costs in FP, and points per ms."""
    if not with_loss:
        return format_table(["layer", "FP cost (ms)"], [(t.layer, f"{t.fp_cost_ms:+.3f}") for t in tradeoffs], "lr")
    rows = [(t.layer, f"{t.loss:+.2f}", f"{t.fp_cost_ms:+.3f}", f"{t.gain_per_ms:.2f}") for t in tradeoffs]
    return format_table(["layer", "INT8 loss (pt)", "FP cost (ms)", "pt per ms"], rows, align="lrrr")


def write_profile_plot(doc: dict[str, Any], out: Path) -> str | None:
    """A bar per stage (ms), the INT8 part shaded; returns why not when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib)"
    stages = doc["stages"]
    names = [s["stage"] for s in stages]
    int8 = [s["ms"] * s["int8_share"] for s in stages]
    other = [s["ms"] - i for s, i in zip(stages, int8)]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(names, int8, label="INT8 kernels", color="#2a7ab0")
    ax.bar(names, other, bottom=int8, label="other kernels", color="#c8c8c8")
    ax.set_ylabel("ms per inference (median)")
    ax.set_title(f"{doc['backend']} {doc['precision']}, batch {doc['batch']}, {doc['threads']} threads", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return None


def markdown_section(rows: Sequence[Any]) -> list[str]:
    """``report.md``'s per-layer section: one stage table per row that carries a ``profile``."""
    out: list[str] = []
    for row in rows:
        doc = (getattr(row, "extra", None) or {}).get("profile")
        if not doc:
            continue
        if not out:
            out += ["## Per-layer time by stage", "",
                    ("As the runtime's own profiler reports it (`edgeres profile ARTIFACT --layers` lists every layer); "
                    "stages as `edgeres info` shows the network."), ""]
        out += [f"### {row.label}: batch {doc['batch']}, {doc['threads']} threads, median of {doc['runs']} runs", "",
                "| stage | kernels | ms | % of time | % of it in INT8 |", "| --- | ---: | ---: | ---: | ---: |"]
        out += [f"| {s['stage']} | {s['layers']} | {s['ms']:.3f} | {100 * s['share']:.1f} | "
                f"{100 * s['int8_share']:.0f} |" for s in doc["stages"]]
        out.append("")
    return out
