"""``accuracy_latency.png``: the decision in one picture. Accuracy (top-1 %, or agreement % with the
FP32 reference) against p50 latency at batch 1 (ms), one labeled point per target/precision, the
recommended point(s) ringed and named in the legend, the Pareto front drawn (even for one point), the
accuracy axis never past 100 %, and points that coincide drawn as nested markers so none hides
another. Needs matplotlib; the report says so when it is missing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgeres.fileio import atomic_path
from edgeres.report.document import Report
from edgeres.report.rows import PRECISION_ORDER, ResultRow, normalize_precision

MARKERS = {"fp32": "o", "bf16": "D", "fp16": "s", "int8": "^"}
SIZES = (150.0, 75.0, 28.0)  # marker areas (pt^2) for points that coincide: largest first, drawn underneath
RECOMMENDED_COLOR = "#e6a100"
FRONT_LABEL = "Pareto front: no other point is both faster and more accurate"


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
    fig = draw_plot(rows, title)
    if isinstance(fig, str):
        return fig
    import matplotlib.pyplot as plt

    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return None


def draw_plot(rows: list[ResultRow], title: str) -> Any:
    """The figure (a matplotlib ``Figure``), or a note saying why there is none."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: pip install 'edgeres[report]'"
    metric = plot_metric(rows)
    if metric is None:
        return "no row has both a p50 latency and an accuracy or agreement"
    key, ylabel = metric
    pts = [r for r in rows if r.p50_ms is not None and getattr(r, key) is not None]
    xs = [float(r.p50_ms) for r in pts]  # type: ignore[arg-type]
    ys = [100.0 * float(getattr(r, key)) for r in pts]
    front = pareto_front(list(zip(xs, ys)))

    fig, ax = plt.subplots(figsize=(9.5, 5.8), dpi=150)
    _set_limits(ax, xs, ys)
    batches = {r.batch for r in pts if r.batch is not None}
    batch = batches.pop() if len(batches) == 1 else 1
    ax.set_xlabel(f"p50 latency at batch {batch} (ms), lower is better")
    ax.set_ylabel(f"{ylabel}, higher is better")
    ax.set_title(title, fontsize=12)
    ax.grid(True, which="both", alpha=0.25)
    handles = _legend_handles(pts, xs, ys, key)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()  # the layout is final from here: the drawing below works in pixels
    _draw_front(ax, xs, ys, front)
    _draw_points(fig, ax, pts, xs, ys, front)
    _place_labels(fig, ax, xs, ys, [_point_label(r) for r in pts])
    return fig


def _series(r: ResultRow) -> str:
    """A row's colour group: its target, and the machine it was measured on in a merged report."""
    return r.target if not r.source else f"{r.target} ({r.source})"


def _set_limits(ax: Any, xs: list[float], ys: list[float]) -> None:
    """Latency from (near) zero, log when it spans more than 20x; accuracy padded but never past 100 %."""
    if max(xs) / max(min(xs), 1e-9) > 20:
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.5, max(xs) * 2.5)
    else:
        xpad = max((max(xs) - min(xs)) * 0.1, max(xs) * 0.05)
        ax.set_xlim(max(0.0, min(xs) - xpad), max(xs) + xpad * 3)
    lo, hi = min(ys), max(ys)
    pad = max(0.5, (hi - lo) * 0.15)
    top = hi + pad if hi > 100.0 else min(100.0, hi + pad)  # a percentage: 100 is the end of the axis
    ax.set_ylim(lo - pad, top)


def _draw_front(ax: Any, xs: list[float], ys: list[float], front: list[int]) -> None:
    """The Pareto staircase: what lies right of and below it is beaten by a point on it (one point too)."""
    ylo = ax.get_ylim()[0]
    xhi = ax.get_xlim()[1]
    fx, fy = [xs[front[0]]], [ylo]
    for n, i in enumerate(front):
        fx += [xs[i], xs[i]] if n else [xs[i]]
        fy += [fy[-1], ys[i]] if n else [ys[i]]
    fx.append(xhi)
    fy.append(fy[-1])
    ax.plot(fx, fy, color="0.4", linestyle="--", linewidth=1.2, zorder=1, label=FRONT_LABEL)
    ax.fill_between(fx, fy, ylo, color="0.5", alpha=0.06, zorder=0, linewidth=0)


def _overlap_sizes(fig: Any, ax: Any, xs: list[float], ys: list[float]) -> list[float]:
    """A marker area per point: points closer than a marker's width get ever smaller markers, drawn on
    top of the larger ones, so every point stays visible as a ring inside the one it coincides with."""
    px = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    reach = math.sqrt(SIZES[0]) * fig.dpi / 72.0  # a large marker's width in pixels
    sizes: list[float] = []
    for i, (a, b) in enumerate(px):
        under = sum(1 for j in range(i) if math.hypot(px[j][0] - a, px[j][1] - b) < reach)
        sizes.append(SIZES[min(under, len(SIZES) - 1)])
    return sizes


def _draw_points(fig: Any, ax: Any, pts: list[ResultRow], xs: list[float], ys: list[float], front: list[int]) -> None:
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab10")
    series = list(dict.fromkeys(_series(r) for r in pts))
    sizes = _overlap_sizes(fig, ax, xs, ys)
    for i, r in enumerate(pts):
        on_front = i in front
        zorder = 3 + SIZES.index(sizes[i])  # smaller markers above larger ones
        ax.scatter(xs[i], ys[i], s=sizes[i], marker=MARKERS.get(r.precision, "o"),
                   color=colors(series.index(_series(r)) % 10), edgecolors="black" if on_front else "white",
                   linewidths=1.1, zorder=zorder, clip_on=False)
        if getattr(r, "recommended", False):
            ax.scatter(xs[i], ys[i], s=SIZES[0] * 3.2, marker="o", facecolors="none", edgecolors=RECOMMENDED_COLOR,
                       linewidths=2.4, zorder=2, clip_on=False)


def _legend_handles(pts: list[ResultRow], xs: list[float], ys: list[float], key: str) -> list[Any]:
    """Colours are targets (and machines), shapes precisions; the recommended point(s) and the front named."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    colors = plt.get_cmap("tab10")
    series = list(dict.fromkeys(_series(r) for r in pts))
    handles = [Line2D([], [], marker="o", linestyle="", color=colors(i % 10), markersize=8, label=t)
               for i, t in enumerate(series)]
    precisions = sorted({r.precision for r in pts}, key=lambda p: PRECISION_ORDER.get(p, 9))
    handles += [Line2D([], [], marker=MARKERS[p], linestyle="", color="0.35", markersize=8, label=p)
                for p in precisions if p in MARKERS]
    what = "top-1" if key == "top1" else "agreement"
    for i, r in enumerate(pts):
        if getattr(r, "recommended", False):
            where = f" on {r.source}" if r.source else ""
            label = f"recommended: {r.target} {r.precision}{where}\n({xs[i]:.2f} ms, {what} {ys[i]:.1f}%)"
            handles.append(Line2D([], [], marker="o", linestyle="", markersize=13, markerfacecolor="none",
                                  markeredgecolor=RECOMMENDED_COLOR, markeredgewidth=2.4, label=label))
    handles.append(Line2D([], [], color="0.4", linestyle="--", label=FRONT_LABEL.replace(": ", ":\n")
                          + "\n(points on it outlined)"))
    return handles


def _point_label(r: ResultRow) -> str:
    text = f"{r.target} {r.precision}"
    if r.execution_precision and normalize_precision(r.execution_precision) != r.precision:
        text += f"\n(runs {r.execution_precision})"
    return text


def _place_labels(fig: Any, ax: Any, xs: list[float], ys: list[float], labels: list[str]) -> None:
    """Put each label beside its point where it overlaps no other label or point and stays inside the axes."""
    renderer = fig.canvas.get_renderer()
    points = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    ax_box = ax.get_window_extent(renderer)
    placed: list[Any] = []
    candidates = [(9, 7, "left", "bottom"), (9, -7, "left", "top"), (-9, 7, "right", "bottom"),
                  (-9, -7, "right", "top"), (0, 12, "center", "bottom"), (0, -12, "center", "top"),
                  (14, 0, "left", "center"), (-14, 0, "right", "center"), (12, 22, "left", "bottom"),
                  (12, -22, "left", "top"), (-12, 22, "right", "bottom"), (-12, -22, "right", "top"),
                  (24, 36, "left", "bottom"), (24, -36, "left", "top"), (-24, 36, "right", "bottom"),
                  (-24, -36, "right", "top")]
    for i in sorted(range(len(labels)), key=lambda i: (xs[i], -ys[i])):
        best, best_score = None, None
        for dx, dy, ha, va in candidates:
            far = abs(dx) > 14 or abs(dy) > 14  # a label set apart from its point gets a leader line
            ann = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                              fontsize=8, zorder=6, annotation_clip=False,
                              arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6} if far else None,
                              bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})
            box = ann.get_window_extent(renderer).expanded(1.05, 1.1)
            score = sum(box.overlaps(b) for b in placed) * 10
            score += sum(box.contains(px, py) for j, (px, py) in enumerate(points) if j != i) * 5
            score += 0 if (ax_box.contains(box.x0, box.y0) and ax_box.contains(box.x1, box.y1)) else 8
            score += 1 if far else 0
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
