"""accuracy_latency.png shows the decision: the recommended point ringed and named in the legend, axes
with units, coinciding points all visible, the Pareto front drawn even for one point, and the accuracy
axis never past 100 %. Pinned on the matplotlib figure ``draw_plot`` returns."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from matplotlib.collections import PathCollection

from edgeres.report import PLOT_PNG, ResultRow, merge_reports, write_report
from edgeres.report.plot import FRONT_LABEL, SIZES, draw_plot


def _row(target, backend, precision, top1, p50, **kw):
    return ResultRow.from_dict({"target": target, "backend": backend, "precision": precision, "top1": top1,
                                "top1_drop": 0.989 - top1, "agreement": 1.0, "p50_ms": p50, "batch": 1, **kw})


# the demo build's shape: intel-cpu fp32 and cpu fp32 at the same accuracy and almost the same latency
ROWS = [
    _row("intel-cpu", "openvino", "fp32", 0.989, 1.22),
    _row("intel-cpu", "openvino", "int8", 0.989, 0.60, recommended=True),
    _row("cpu", "onnxruntime", "fp32", 0.989, 1.23),
    _row("cpu", "onnxruntime", "int8", 0.989, 0.91, recommended=True),
]


def _legend_texts(fig):
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _markers(fig):
    """(x, y, size, zorder) of every data marker drawn (the recommended rings excluded)."""
    out = []
    for c in fig.axes[0].collections:
        if isinstance(c, PathCollection) and len(c.get_facecolors()):
            (x, y), = c.get_offsets()
            out.append((float(x), float(y), float(c.get_sizes()[0]), c.get_zorder()))
    return out


def test_recommended_point_named_in_legend_and_ringed():
    fig = draw_plot(ROWS[:2], "one build")
    texts = _legend_texts(fig)
    rec = [t for t in texts if t.startswith("recommended:")]
    assert rec == ["recommended: intel-cpu int8\n(0.60 ms, top-1 98.9%)"]
    rings = [c for c in fig.axes[0].collections if isinstance(c, PathCollection) and not len(c.get_facecolors())]
    assert len(rings) == 1 and tuple(rings[0].get_offsets()[0]) == (0.60, 98.9)


def test_axes_carry_units():
    ax = draw_plot(ROWS, "t").axes[0]
    assert ax.get_xlabel().startswith("p50 latency at batch 1 (ms)")
    assert ax.get_ylabel().startswith("top-1 accuracy (%)")
    agreement = [ResultRow.from_dict({**r.to_dict(), "fidelity_only": True}) for r in ROWS]
    assert draw_plot(agreement, "t").axes[0].get_ylabel().startswith("top-1 agreement with the FP32 reference (%)")


def test_accuracy_axis_stops_at_100_percent():
    rows = [_row("cpu", "onnxruntime", "fp32", 1.0, 2.0), _row("cpu", "onnxruntime", "int8", 0.995, 1.0)]
    bottom, top = draw_plot(rows, "t").axes[0].get_ylim()
    assert top == 100.0 and bottom < 99.5


def test_pareto_front_drawn_with_one_point():
    fig = draw_plot(ROWS[:1], "t")
    front = [ln for ln in fig.axes[0].lines if ln.get_label() == FRONT_LABEL]
    assert len(front) == 1 and len(front[0].get_xdata()) >= 3  # up to the point, then on to the right edge
    assert any(t.startswith("Pareto front") for t in _legend_texts(fig))


def test_coinciding_points_stay_visible():
    """cpu fp32 lands on intel-cpu fp32: it is drawn smaller and above, so both show."""
    marks = _markers(draw_plot(ROWS, "t"))
    first = next(m for m in marks if m[0] == 1.22)
    second = next(m for m in marks if m[0] == 1.23)
    assert first[2] == SIZES[0] and second[2] < first[2] and second[3] > first[3]
    alone = next(m for m in marks if m[0] == 0.60)
    assert alone[2] == SIZES[0]


def test_merged_plot_names_each_recommendation_with_its_machine(tmp_path):
    write_report([r.to_dict() for r in ROWS[:2]], tmp_path / "a", timing={"batch": 1})
    write_report([r.to_dict() for r in ROWS[2:]], tmp_path / "b", timing={"batch": 1},
                 env={"cpu": "Other CPU", "cpu_count": 64})
    merged = merge_reports([tmp_path / "a", tmp_path / "b"])
    texts = _legend_texts(draw_plot(merged.rows, "merged"))
    rec = [t.split("\n")[0] for t in texts if t.startswith("recommended:")]
    assert len(rec) == 2 and rec[0].startswith("recommended: intel-cpu int8 on ")
    assert rec[1] == "recommended: cpu int8 on Other CPU"
    write_report(merged, tmp_path / "m")
    assert (tmp_path / "m" / PLOT_PNG).stat().st_size > 10_000
