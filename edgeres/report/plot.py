"""``accuracy_latency.png``: accuracy against p50 latency, one labeled point per target/precision,
the Pareto front drawn (needs matplotlib; the report says so when it is missing)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgeres.fileio import atomic_path
from edgeres.report.document import Report
from edgeres.report.rows import PRECISION_ORDER, ResultRow, normalize_precision


def plot_metric(rows: list[ResultRow]) -> tuple[str, str] | None:
    """Which accuracy to plot: top-1 when every row has a real one, else agreement; None if neither."""
    timed = [r for r in rows if r.p50_ms is not None]
    if timed and all(r.top1 is not None and not r.fidelity_only for r in timed):
        return "top1", "top-1 accuracy (%)"
    if timed and all(r.agreement is not None for r in timed):
        return "agreement", "top-1 agreement with the FP32 reference (%)"
    return None


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both (lower x, higher y), by increasing x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def write_plot(rows: list[ResultRow], out: Path, title: str) -> str | None:
    """Write the accuracy-vs-latency PNG; returns a note saying why not when it cannot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
    except ImportError:
        return "matplotlib is not installed: pip install 'edgeres[report]'"
    metric = plot_metric(rows)
    if metric is None:
        return "no row has both a p50 latency and an accuracy or agreement"
    key, ylabel = metric
    pts = [r for r in rows if r.p50_ms is not None and getattr(r, key) is not None]
    xs = [float(r.p50_ms) for r in pts]  # type: ignore[arg-type]
    ys = [100.0 * float(getattr(r, key)) for r in pts]
    targets = list(dict.fromkeys(r.target if not r.source else f"{r.target} ({r.source})" for r in pts))
    colors = plt.get_cmap("tab10")
    markers = {"fp32": "o", "bf16": "D", "fp16": "s", "int8": "^"}

    fig, ax = plt.subplots(figsize=(9, 5.6), dpi=150)
    front = pareto_front(list(zip(xs, ys)))
    if len(front) > 1:
        fx, fy = [xs[i] for i in front], [ys[i] for i in front]
        ax.step(fx, fy, where="post", color="0.45", linestyle="--", linewidth=1.3, zorder=1)
    for i, r in enumerate(pts):
        t = targets.index(r.target if not r.source else f"{r.target} ({r.source})")
        on_front = i in front
        ax.scatter(xs[i], ys[i], s=110 if on_front else 70, marker=markers.get(r.precision, "o"),
                   color=colors(t % 10), edgecolors="black" if on_front else "white", linewidths=1.2, zorder=3)
    if max(xs) / max(min(xs), 1e-9) > 20:
        ax.set_xscale("log")
    lo, hi = min(ys), max(ys)
    pad = max(0.5, (hi - lo) * 0.15)
    ax.set_ylim(lo - pad, min(100.0 + pad * 0.6, hi + pad) if hi <= 100 else hi + pad)
    xlo, xhi = min(xs), max(xs)
    if ax.get_xscale() == "linear":
        xpad = max((xhi - xlo) * 0.1, xhi * 0.05)
        ax.set_xlim(max(0.0, xlo - xpad), xhi + xpad * 3)
    labels = []
    for r in pts:
        text = f"{r.target} {r.precision}"
        if r.execution_precision and normalize_precision(r.execution_precision) != r.precision:
            text += f"\n(runs {r.execution_precision})"
        labels.append(text)
    ax.set_xlabel("p50 latency (ms, lower is better)")
    ax.set_ylabel(ylabel + ", higher is better")
    ax.set_title(title, fontsize=12)
    ax.grid(True, which="both", alpha=0.25)
    handles = [Line2D([], [], marker="o", linestyle="", color=colors(i % 10), markersize=8, label=t)
               for i, t in enumerate(targets)]
    handles += [Line2D([], [], marker=markers[p], linestyle="", color="0.35", markersize=8, label=p)
                for p in sorted({r.precision for r in pts}, key=lambda p: PRECISION_ORDER.get(p, 9)) if p in markers]
    if len(front) > 1:
        handles.append(Line2D([], [], color="0.45", linestyle="--", label="Pareto front (outlined)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, frameon=False)
    fig.tight_layout()
    _place_labels(fig, ax, xs, ys, labels)  # after the layout is final: placement works in pixels
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return None


def _place_labels(fig: Any, ax: Any, xs: list[float], ys: list[float], labels: list[str]) -> None:
    """Put each label beside its point where it overlaps no other label or point and stays inside the axes."""
    renderer = fig.canvas.get_renderer()
    points = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    ax_box = ax.get_window_extent(renderer)
    placed: list[Any] = []
    candidates = [(9, 7, "left", "bottom"), (9, -7, "left", "top"), (-9, 7, "right", "bottom"),
                  (-9, -7, "right", "top"), (0, 12, "center", "bottom"), (0, -12, "center", "top"),
                  (14, 0, "left", "center"), (-14, 0, "right", "center"), (12, 22, "left", "bottom"),
                  (12, -22, "left", "top"), (-12, 22, "right", "bottom"), (-12, -22, "right", "top")]
    for i in sorted(range(len(labels)), key=lambda i: (xs[i], -ys[i])):
        best, best_score = None, None
        for dx, dy, ha, va in candidates:
            ann = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                              fontsize=8.5, zorder=4,
                              bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})
            box = ann.get_window_extent(renderer).expanded(1.05, 1.1)
            score = sum(box.overlaps(b) for b in placed) * 10
            score += sum(box.contains(px, py) for j, (px, py) in enumerate(points) if j != i) * 5
            score += 0 if (ax_box.contains(box.x0, box.y0) and ax_box.contains(box.x1, box.y1)) else 8
            if best_score is None or score < best_score:
                if best is not None:
                    best[0].remove()
                best, best_score = (ann, box), score
            else:
                ann.remove()
            if score == 0:
                break
        assert best is not None
        placed.append(best[1])


def plot_title(report: Report) -> str:
    m = report.model
    model = f"ResNet-{m['depth']}" if m.get("depth") else "model"
    batch = report.timing.get("batch")
    bits = [f"batch {batch}" if batch else None, report.timing.get("where")]
    sub = ", ".join(b for b in bits if b)
    return f"{model}: accuracy vs latency" + (f" ({sub})" if sub else "")
