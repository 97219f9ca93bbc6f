"""Report rows: one (target, precision) result, and the summary table every command prints.

Units in a row: ``top1``, ``top5``, ``agreement``, ``top1_drop`` are fractions (0.931 = 93.1 %;
``top1_drop`` = reference top-1 minus this top-1, so 0.004 = 0.4 points); latencies in ms;
``throughput`` in images/s; ``size_bytes`` in bytes; ``build_seconds`` in seconds. ``loss``: what
the row loses against FP32 in points with its paired 95% interval (``LossInterval.to_dict()`` plus
``what``: "top-1 drop" or "agreement loss"); ``n_val`` / ``n_calib``: images it was validated /
calibrated on; ``recommended``: the precision the build recommends.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from edgeres.errors import EdgeresError
from edgeres.table import format_table
from edgeres.validate.figures import footnotes

PRECISION_ORDER = {"fp32": 0, "bf16": 1, "fp16": 2, "int8": 3}

FIDELITY_NOTE = ("* fidelity-only: random weights or no labels, so top-1 says nothing about the model; "
                 "agreement and the cosine of centred logits with the FP32 reference are the numbers to read")


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
    cosine: float | None = None            # mean cosine of logits to FP32's (plain)
    centred_cosine: float | None = None    # the same on logits centred on their per-class mean over the images
    p50_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None
    batch: int | None = None
    size_bytes: int | None = None
    build_seconds: float | None = None
    fidelity_only: bool = False
    loss: dict[str, Any] | None = None
    n_val: int | None = None
    n_calib: int | None = None
    recommended: bool = False     # the precision the build recommends for this target (ringed in the plot)
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
        known["recommended"] = bool(known.get("recommended", False))
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


SUMMARY_HEADERS = ["target", "backend", "precision", "exec", "top-1", "top-1 drop", "loss pt (95% CI)", "agreement",
                   "p50 ms", "p99 ms", "n", "img/s", "size", "build"]
SUMMARY_ALIGN = "lllllrrrrrrrrr"


def _loss(loss: dict[str, Any] | None) -> str:
    """'+0.4 [-0.2, +1.1]': the loss against FP32 and its 95% interval, in points."""
    if not loss:
        return "-"
    star = "" if loss.get("what", "top-1 drop") == "top-1 drop" else " a"
    return f"{loss['loss'] + 0.0:+.1f} [{loss['low'] + 0.0:+.1f}, {loss['high'] + 0.0:+.1f}]{star}"


LOSS_NOTE = ("loss pt (95% CI): points lost against the FP32 reference on the same images, with the paired 95% "
             "interval (Tango's score interval for the top-1 drop; 'a' = loss of top-1 agreement, Wilson interval)")


RUNS_NOTE = ("n: timed runs behind p50 (p99 only from 100 runs on); img/s: the throughput measurement "
             "(its mode, batch, streams and requests are listed above); ! = the machine was busy while timing.")


def sizes_line(rows: list[ResultRow]) -> str | None:
    """'sets: validation 500 images; calibration 300 images (int8 rows)': the set sizes behind the accuracies
    (not 'n:', which is the timed runs)."""
    val = sorted({r.n_val for r in rows if r.n_val is not None})
    calib = sorted({r.n_calib for r in rows if r.n_calib is not None})
    if not val and not calib:
        return None
    bits = [f"validation {', '.join(map(str, val))} images" if val else None,
            f"calibration {', '.join(map(str, calib))} images (int8 rows)" if calib else None]
    return "sets: " + "; ".join(b for b in bits if b)


E2E_NOTE = ("e2e p50: a camera frame (uint8, already resized and cropped) in, top-5 out, batch 1; cast, colour, "
            "mean/std and layout inside the engine (OpenVINO, ONNX Runtime), on the host otherwise; in brackets: "
            "over engine-only p50 timed in the same interleaved run (its runs, load and each path's figures: "
            "report.json, extra.frames); ! = the machine was busy while timing")


def e2e_cell(row: ResultRow) -> str:
    """p50 of frame in, top-5 out (edgeres.validate.frames), and its ratio to the engine-only p50 timed
    in the same interleaved run."""
    frames = row.extra.get("frames") or {}
    e2e = row.extra.get("e2e_fused_p50_ms") or row.extra.get("e2e_host_p50_ms")
    if e2e is None:
        return "-"
    engine = frames.get("engine_p50_ms")
    busy = "!" if (frames.get("load") or {}).get("busy") else ""  # timed apart from the row's p50, loaded apart
    return _ms(e2e) + busy + (f" ({e2e / engine:.2f}x)" if engine else "")


def with_e2e(rows: list[ResultRow], headers: list[str], align: str, body: list[tuple[str, ...]]
             ) -> tuple[list[str], str, list[tuple[str, ...]]]:
    """An "e2e p50" column after the latency columns when rows measured it."""
    cells = [e2e_cell(r) for r in rows]
    if all(c == "-" for c in cells):
        return headers, align, body
    at = headers.index("n" if "n" in headers else "p99 ms") + 1
    return (headers[:at] + ["e2e p50"] + headers[at:], align[:at] + "r" + align[at:],
            [(*b[:at], c, *b[at:]) for b, c in zip(body, cells)])


def summary_rows(rows: list[Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for r in as_rows(rows):
        top1 = _pct(r.top1) + ("*" if r.fidelity_only and r.top1 is not None else "")
        busy = "!" if r.extra.get("load_warning") else ""
        exec_ = (r.execution_precision or "-") + (" (not as built)" if r.extra.get("execution_note") else "")
        runs = r.extra.get("runs", r.extra.get("iterations"))  # kit rows carry their latency records
        out.append((r.target, r.backend, r.precision + (" (rec.)" if r.recommended else ""), exec_, top1,
                    _drop(r.top1_drop), _loss(r.loss), _pct(r.agreement), _ms(r.p50_ms) + busy, _ms(r.p99_ms), "-" if runs is None else str(runs),
                    _num(r.throughput), human_bytes(r.size_bytes),
                    "-" if r.build_seconds is None else f"{r.build_seconds:.1f} s"))
    return out


def summary_table(rows: list[Any], *, show_source: bool | None = None) -> str:
    """The one summary table (CLI, build pipeline, report.md): target, backend, precision, execution
    precision, top-1, top-1 drop, agreement, p50, p99, throughput, size, build time. A footnote
    explains starred (fidelity-only) accuracies. ``show_source`` adds a column naming the report
    each row came from (default: when the rows come from more than one)."""
    rows = as_rows(rows)
    headers, align, body = with_e2e(rows, list(SUMMARY_HEADERS), SUMMARY_ALIGN[: len(SUMMARY_HEADERS)],
                                    summary_rows(rows))
    if show_source is None:
        show_source = len({r.source for r in rows}) > 1
    if show_source:
        headers, align = ["from", *headers], "l" + align
        body = [(r.source or "-", *b) for r, b in zip(rows, body)]
    text = format_table(headers, body, align=align)
    if any(r.fidelity_only for r in rows):
        text += "\n" + FIDELITY_NOTE
    text = "\n".join([text, *footnotes(rows), RUNS_NOTE])
    if "e2e p50" in headers:
        text += "\n" + E2E_NOTE
    if any(r.loss for r in rows):
        text += "\n" + LOSS_NOTE
    sizes = sizes_line(rows)
    return text + ("\n" + sizes if sizes else "")


def normalize_precision(p: str) -> str:
    """What a backend reports ('f32', 'FP16', 'u8', 'i8') in edgeres' own words ('fp32', 'fp16', 'int8')."""
    p = p.lower()
    return {"f32": "fp32", "float32": "fp32", "f16": "fp16", "float16": "fp16", "half": "fp16",
            "u8": "int8", "i8": "int8", "uint8": "int8", "bfloat16": "bf16"}.get(p, p)
