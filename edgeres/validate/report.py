"""The report of a build: what each target/precision costs in accuracy and buys in latency.

``write_report(rows, out_dir, timing=...)`` writes three files:

- ``report.json``: versioned schema (``schema`` = "edgeres.report", ``schema_version`` = 1), the
  environment (CPU, GPU, OS, Python, backend versions, edgeres version), what was timed, one row
  per (target, precision);
- ``report.md``: the summary table and what was timed;
- ``accuracy_latency.png``: top-1 (or agreement with the FP32 reference) against p50 latency,
  one labeled point per target/precision, the Pareto front drawn (needs matplotlib; skipped
  with a note when it is missing).

``merge_reports(paths)`` combines several reports (builds on this machine, a ``kit-report.json``
brought back from a Jetson) into one comparison. Numpy-free and torch-free.

Units in a row: ``top1``, ``top5``, ``agreement``, ``top1_drop`` are fractions (0.931 = 93.1 %;
``top1_drop`` = reference top-1 minus this top-1, so 0.004 = 0.4 points); latencies in ms;
``throughput`` in images/s; ``size_bytes`` in bytes; ``build_seconds`` in seconds.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from edgeres import __version__
from edgeres.errors import EdgeresError
from edgeres.fileio import atomic_path, load_json, write_json_atomic, write_text_atomic
from edgeres.hostinfo import cpu_name
from edgeres.table import format_table

SCHEMA = "edgeres.report"
SCHEMA_VERSION = 1
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PLOT_PNG = "accuracy_latency.png"
KIT_REPORT_JSON = "kit-report.json"
PRECISION_ORDER = {"fp32": 0, "bf16": 1, "fp16": 2, "int8": 3}

FIDELITY_NOTE = ("* fidelity-only: random weights or no labels, so top-1 says nothing about the model; "
                 "agreement and cosine with the FP32 reference are the numbers to read")


@dataclass
class ResultRow:
    """One (target, precision) result. See the module docstring for units."""

    target: str
    backend: str
    precision: str
    execution_precision: str | None = None
    top1: float | None = None
    top5: float | None = None
    top1_drop: float | None = None
    agreement: float | None = None
    cosine: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None
    batch: int | None = None
    size_bytes: int | None = None
    build_seconds: float | None = None
    fidelity_only: bool = False
    notes: list[str] = field(default_factory=list)
    device: str | None = None     # what ran it: "CPU (AMD EPYC ...)", "Orin (sm 8.7)"
    timed: str | None = None      # what the latency includes, e.g. "host wall clock, inputs on host"
    threads: int | None = None
    source: str | None = None     # which report a merged row came from
    extra: dict[str, Any] = field(default_factory=dict)

    # keys other producers use for the same thing (kit reports, validate results, older rows)
    ALIASES: ClassVar[dict[str, str]] = {
        "p50": "p50_ms", "latency_p50_ms": "p50_ms", "p99": "p99_ms", "latency_p99_ms": "p99_ms",
        "throughput_ips": "throughput", "images_per_s": "throughput", "throughput_per_s": "throughput",
        "size": "size_bytes", "artifact_bytes": "size_bytes", "artifact_size": "size_bytes",
        "engine_bytes": "size_bytes", "build_time": "build_seconds", "build_s": "build_seconds",
        "exec_precision": "execution_precision", "executed_precision": "execution_precision",
        "top1_agreement": "agreement", "mean_cosine": "cosine", "cosine_similarity": "cosine",
        "batch_size": "batch",
    }

    @classmethod
    def _canonical(cls, key: str) -> str:
        return cls.ALIASES.get(key, key)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResultRow:
        """A row from a plain dict; known synonyms are mapped, nested ``accuracy`` / ``latency``
        dicts (as ``AccuracyResult.to_dict()`` / ``LatencyResult.to_dict()`` give) are flattened,
        anything unknown is kept in ``extra``."""
        names = {f.name for f in fields(cls)}
        flat: dict[str, Any] = {}
        for key, value in d.items():
            if key in ("accuracy", "latency") and isinstance(value, dict):
                for k, v in value.items():
                    flat.setdefault(cls._canonical(str(k)), v)
            elif key in ("latency", "accuracy") and isinstance(value, list) and value and isinstance(value[0], dict):
                first = min(value, key=lambda r: r.get("batch", r.get("batch_size", 1)) or 1)
                for k, v in first.items():
                    flat.setdefault(cls._canonical(str(k)), v)
            else:
                flat[cls._canonical(key)] = value
        known = {k: v for k, v in flat.items() if k in names and k != "extra"}
        extra = {k: v for k, v in flat.items() if k not in names}
        extra.update(d.get("extra") or {})
        for key in ("target", "backend", "precision"):
            if not known.get(key):
                raise EdgeresError(f"a report row has no '{key}': {sorted(d)}")
        notes = known.get("notes") or []
        known["notes"] = [notes] if isinstance(notes, str) else list(notes)
        known["fidelity_only"] = bool(known.get("fidelity_only", False))
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["extra"]:
            d.pop("extra")
        return d

    @property
    def label(self) -> str:
        return f"{self.target} {self.precision}"


def as_rows(rows: list[Any]) -> list[ResultRow]:
    """Rows given as ``ResultRow``, dicts, or anything with ``to_dict()``."""
    out = []
    for r in rows:
        if isinstance(r, ResultRow):
            out.append(r)
        elif isinstance(r, dict):
            out.append(ResultRow.from_dict(r))
        elif hasattr(r, "to_dict"):
            out.append(ResultRow.from_dict(r.to_dict()))
        else:
            raise TypeError(f"cannot make a report row from {type(r).__name__}")
    return out


# --- formatting ------------------------------------------------------------------------------

def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _drop(x: float | None) -> str:
    if x is None:
        return "-"
    pts = round(100 * x, 1)
    return f"{pts + 0.0:.1f} pt"  # + 0.0 turns -0.0 into 0.0; a negative drop is a gain


def _ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def _num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    return (f"{x:.1f}" if x < 10 else f"{x:,.0f}") + unit


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} GB"


SUMMARY_HEADERS = ["target", "backend", "precision", "exec", "top-1", "top-1 drop", "agreement",
                   "p50 ms", "p99 ms", "img/s", "size", "build"]
SUMMARY_ALIGN = "lllllrrrrrrrr"


def summary_rows(rows: list[Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for r in as_rows(rows):
        top1 = _pct(r.top1) + ("*" if r.fidelity_only and r.top1 is not None else "")
        out.append((r.target, r.backend, r.precision, r.execution_precision or "-", top1, _drop(r.top1_drop),
                    _pct(r.agreement), _ms(r.p50_ms), _ms(r.p99_ms), _num(r.throughput), human_bytes(r.size_bytes),
                    "-" if r.build_seconds is None else f"{r.build_seconds:.1f} s"))
    return out


def summary_table(rows: list[Any], *, show_source: bool | None = None) -> str:
    """The one summary table (CLI, build pipeline, report.md): target, backend, precision, execution
    precision, top-1, top-1 drop, agreement, p50, p99, throughput, size, build time. A footnote
    explains starred (fidelity-only) accuracies. ``show_source`` adds a column naming the report
    each row came from (default: when the rows come from more than one)."""
    rows = as_rows(rows)
    headers, align, body = list(SUMMARY_HEADERS), SUMMARY_ALIGN[: len(SUMMARY_HEADERS)], summary_rows(rows)
    if show_source is None:
        show_source = len({r.source for r in rows}) > 1
    if show_source:
        headers, align = ["from", *headers], "l" + align
        body = [(r.source or "-", *b) for r, b in zip(rows, body)]
    text = format_table(headers, body, align=align)
    if any(r.fidelity_only for r in rows):
        text += "\n" + FIDELITY_NOTE
    return text


def _markdown_table(headers: list[str], rows: list[tuple[str, ...]], align: str) -> str:
    def esc(c: str) -> str:
        return str(c).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |",
             "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- environment -----------------------------------------------------------------------------

def _board() -> str | None:
    """The board, on Jetson and other device-tree machines ('NVIDIA Jetson AGX Orin Developer Kit')."""
    try:
        return Path("/proc/device-tree/model").read_text(errors="replace").strip("\x00\n ") or None
    except OSError:
        return None


def _gpu_name() -> str | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


def _package_version(name: str) -> str | None:
    """Version of an installed distribution without importing it (torch, nncf are slow to import)."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Where the numbers were measured: CPU, GPU, board, OS, Python, backend and library versions."""
    from edgeres.optional import version_of

    backends = {name: version_of(name) for name in ("onnxruntime", "openvino", "tensorrt")}
    if backends["tensorrt"] == "unknown":  # only the type stubs: a namespace package
        backends["tensorrt"] = None
    return {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "gpu": _gpu_name(),
        "board": _board(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "edgeres": __version__,
        "backends": backends,
        "packages": {name: _package_version(name) for name in ("numpy", "onnx", "nncf", "torch")},
    }


def environment_label(env: dict[str, Any]) -> str:
    """A short name for where a report was measured: the board, else GPU, else CPU."""
    gpu = env.get("gpu")
    if isinstance(gpu, dict):  # a kit report's GPU record: {"name", "compute_capability", ...}
        gpu = gpu.get("name")
    return str(env.get("board") or gpu or env.get("cpu") or "unknown machine")


# --- the report ------------------------------------------------------------------------------

@dataclass
class Report:
    rows: list[ResultRow]
    environment: dict[str, Any]
    timing: dict[str, Any] = field(default_factory=dict)
    title: str = "edgeres report"
    model: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    merged_from: list[dict[str, Any]] = field(default_factory=list)
    created: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from edgeres.bundle.manifest import now_utc

        return {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "edgeres_version": __version__,
            "created": self.created or now_utc(), "title": self.title, "model": self.model,
            "environment": self.environment, "timing": self.timing,
            "rows": [r.to_dict() for r in self.rows], "notes": self.notes, "merged_from": self.merged_from,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "report") -> Report:
        if d.get("schema") != SCHEMA:
            raise EdgeresError(f"{where} is not an edgeres report (schema {d.get('schema')!r})")
        if not isinstance(d.get("schema_version"), int) or d["schema_version"] > SCHEMA_VERSION:
            raise EdgeresError(f"{where} has report schema version {d.get('schema_version')!r}, newer than this "
                               f"edgeres understands ({SCHEMA_VERSION}); upgrade edgeres")
        return cls(rows=as_rows(d.get("rows", [])), environment=d.get("environment") or {},
                   timing=d.get("timing") or {}, title=d.get("title") or "edgeres report", model=d.get("model") or {},
                   notes=list(d.get("notes") or []), merged_from=list(d.get("merged_from") or []),
                   created=d.get("created"))

    def summary(self) -> str:
        return summary_table(self.rows)


def timing_text(timing: dict[str, Any], rows: list[ResultRow]) -> list[str]:
    """Plain sentences: host vs device, threads, batch, warm-up, iterations."""
    lines = []
    where = timing.get("where")
    if where:
        lines.append(f"- where: {where}")
    if timing.get("what") or timing.get("timed"):
        lines.append(f"- what a latency includes: {timing.get('what') or timing.get('timed')}")
    shown = sorted({r.batch for r in rows if r.batch is not None})
    for key, label in (("batch", "batch size"), ("threads", "threads"), ("warmup", "warm-up runs"),
                       ("iterations", "timed runs"), ("seconds", "time budget (s)")):
        value = timing.get(key)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
            if key == "batch" and shown:
                value += f" (the table shows batch {', '.join(map(str, shown))})"
            label += "s" if key == "batch" else ""
        lines.append(f"- {label}: {value}")
    per_row = [(r.label, r.timed, r.threads, r.device) for r in rows if r.timed or r.threads or r.device]
    for label, timed, threads, device in per_row:
        bits = [b for b in (device, timed, f"{threads} threads" if threads else None) if b]
        lines.append(f"- {label}: {', '.join(bits)}")
    return lines or ["- not recorded"]


def render_markdown(report: Report, plot_written: bool, plot_note: str | None) -> str:
    rows = report.rows
    show_source = len({r.source for r in rows}) > 1
    headers, align = list(SUMMARY_HEADERS), SUMMARY_ALIGN[: len(SUMMARY_HEADERS)]
    body = summary_rows(rows)
    if show_source:
        headers, align = ["from", *headers], "l" + align
        body = [(r.source or "-", *b) for r, b in zip(rows, body)]
    out = [f"# {report.title}", ""]
    if report.model:
        m = report.model
        bits = [f"ResNet-{m['depth']}" if m.get("depth") else None,
                f"{m['num_classes']} classes" if m.get("num_classes") else None,
                f"{m['input_size']}x{m['input_size']} input" if m.get("input_size") else None,
                f"weights: {m['weights']}" if m.get("weights") else None]
        out += [", ".join(b for b in bits if b), ""]
    out += [_markdown_table(headers, body, align), ""]
    if any(r.fidelity_only for r in rows):
        out += [FIDELITY_NOTE, ""]
    out += [("top-1 drop: the FP32 reference's top-1 minus this row's, in points; agreement: how often the top "
             "class equals the FP32 reference's."), ""]
    if plot_written:
        out += [f"![accuracy vs latency]({PLOT_PNG})", ""]
    elif plot_note:
        out += [f"(no plot: {plot_note})", ""]
    notes = [(r.label, n) for r in rows for n in r.notes]
    if notes or report.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [f"- {label}: {n}" for label, n in notes] + [""]
    out += ["## What was timed", ""]
    if report.merged_from:
        for src in report.merged_from:
            out += [f"### {src.get('label')}", ""] + timing_text(src.get("timing") or {},
                                                                 [r for r in rows if r.source == src.get("label")])
            out.append("")
    else:
        out += timing_text(report.timing, rows) + [""]
    out += ["## Environment", ""]
    envs = ([(src.get("label"), src.get("environment") or {}) for src in report.merged_from]
            if report.merged_from else [(None, report.environment)])
    for label, env in envs:
        if label:
            out += [f"### {label}", ""]
        for key in ("board", "cpu", "cpu_count", "gpu", "tensorrt", "dla_cores", "os", "python", "edgeres"):
            value = env.get(key)
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items() if v is not None)
            if value is not None:
                out.append(f"- {key}: {value}")
        versions = {**(env.get("backends") or {}), **(env.get("packages") or {})}
        shown = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        if shown:
            out.append(f"- versions: {shown}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# --- plot ------------------------------------------------------------------------------------

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


def normalize_precision(p: str) -> str:
    """What a backend reports ('f32', 'FP16', 'u8', 'i8') in edgeres' own words ('fp32', 'fp16', 'int8')."""
    p = p.lower()
    return {"f32": "fp32", "float32": "fp32", "f16": "fp16", "float16": "fp16", "half": "fp16",
            "u8": "int8", "i8": "int8", "uint8": "int8", "bfloat16": "bf16"}.get(p, p)


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


def _plot_title(report: Report) -> str:
    m = report.model
    model = f"ResNet-{m['depth']}" if m.get("depth") else "model"
    batch = report.timing.get("batch")
    bits = [f"batch {batch}" if batch else None, report.timing.get("where")]
    sub = ", ".join(b for b in bits if b)
    return f"{model}: accuracy vs latency" + (f" ({sub})" if sub else "")


# --- writing, reading, merging ---------------------------------------------------------------

def write_report(rows: list[Any] | Report, out_dir: str | os.PathLike[str], *, timing: dict[str, Any] | None = None,
                 title: str = "edgeres report", model: dict[str, Any] | None = None, notes: list[str] | None = None,
                 env: dict[str, Any] | None = None) -> Report:
    """Write ``report.json``, ``report.md`` and ``accuracy_latency.png`` into ``out_dir``.

    ``rows``: ``ResultRow``s or dicts (see ``ResultRow.from_dict``) or a ready ``Report``.
    ``timing``: what the latencies mean, e.g. {"where": "host", "what": "wall clock, inputs on
    host", "batch": 1, "threads": 4, "warmup": 10, "iterations": 100}. ``model``: depth,
    num_classes, input_size, weights. Returns the report written.
    """
    if isinstance(rows, Report):
        report = rows
    else:
        report = Report(rows=as_rows(rows), environment=env if env is not None else environment(),
                        timing=dict(timing or {}), title=title, model=dict(model or {}), notes=list(notes or []))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_note = write_plot(report.rows, out_dir / PLOT_PNG, _plot_title(report))
    if plot_note and (out_dir / PLOT_PNG).exists():
        (out_dir / PLOT_PNG).unlink()  # a stale plot from an earlier report would mislead
    if plot_note and not any(plot_note in n for n in report.notes):
        report.notes.append(f"accuracy_latency.png not written: {plot_note}")
    write_json_atomic(out_dir / REPORT_JSON, report.to_dict())
    write_text_atomic(out_dir / REPORT_MD, render_markdown(report, plot_note is None, plot_note))
    return report


def read_report(path: str | os.PathLike[str]) -> Report:
    """A report from a folder (``report.json`` or ``kit-report.json`` inside) or a JSON file."""
    p = Path(path)
    if p.is_dir():
        for name in (REPORT_JSON, KIT_REPORT_JSON):
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise EdgeresError(f"{path} has no {REPORT_JSON} or {KIT_REPORT_JSON}; is it a build or kit output folder?")
    if not p.is_file():
        raise EdgeresError(f"report {p} does not exist")
    data = load_json(p, "report")
    if isinstance(data, dict) and data.get("schema") != SCHEMA and "rows" in data:
        data = _from_kit_report(data)  # a kit report brought back from a device
    return Report.from_dict(data, str(p))


def _from_kit_report(d: dict[str, Any]) -> dict[str, Any]:
    """Accept a device kit's report: rows in the same format, environment and timing alongside."""
    return {"schema": SCHEMA, "schema_version": 1, "title": d.get("title") or f"kit report: {d.get('target', '?')}",
            "model": d.get("model") or {}, "environment": d.get("environment") or {},
            "timing": d.get("timing") or {}, "notes": d.get("notes") or [],
            # rows name their target and backend; kit reports written before they did were all TensorRT
            "rows": [{"target": d.get("target"), "backend": d.get("backend", "tensorrt"), **r} for r in d["rows"]],
            "created": d.get("created")}


def _machine(env: dict[str, Any]) -> dict[str, Any]:
    """The parts of an environment that make two measurements comparable as "the same machine"."""
    return {k: env.get(k) for k in ("cpu", "cpu_count", "gpu", "os", "board")}


def merge_reports(paths: list[str | os.PathLike[str]], title: str | None = None) -> Report:
    """Combine reports (folders or JSON files) into one comparison; each row remembers where it
    was measured (``source``), and each source's environment and timing are kept."""
    if not paths:
        raise EdgeresError("name at least one report folder to merge")
    reports = [(Path(p), read_report(p)) for p in paths]
    if len(reports) == 1 and not reports[0][1].merged_from:
        return reports[0][1]
    rows: list[ResultRow] = []
    sources: list[dict[str, Any]] = []
    used: dict[str, dict[str, Any]] = {}  # label -> the environment it names
    for path, rep in reports:
        subs = rep.merged_from or [{"label": None, "environment": rep.environment, "timing": rep.timing,
                                    "path": str(path), "title": rep.title}]
        for sub in subs:
            env = _machine(sub.get("environment") or {})
            base = sub.get("label") or environment_label(sub.get("environment") or {})
            label, n = base, 2
            while label in used and used[label] != env:  # same label, another machine
                label, n = f"{base} #{n}", n + 1
            used[label] = env
            old = sub.get("label")
            for r in rep.rows:
                if r.source == old or (old is None):
                    rows.append(ResultRow(**{**asdict(r), "source": label}))
            if all(src["label"] != label for src in sources):
                sources.append({**sub, "label": label})
    models = [rep.model for _, rep in reports if rep.model]
    model = models[0] if models and all(m == models[0] for m in models) else {}
    notes = [n for _, rep in reports for n in rep.notes if not n.startswith(f"{PLOT_PNG} not written")]
    if len(models) > 1 and not model:
        notes.append("the merged reports are for different models; compare rows with care")
    return Report(rows=rows, environment=environment(), timing={}, title=title or "edgeres report (merged)",
                  model=model, notes=list(dict.fromkeys(notes)), merged_from=sources)
