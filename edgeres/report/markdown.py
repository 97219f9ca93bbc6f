"""``report.md``: the summary table, notes, what was timed and where, as Markdown."""

from __future__ import annotations

from typing import Any

from edgeres.report.document import PLOT_PNG, Report
from edgeres.report.profile import markdown_section as profile_section
from edgeres.report.rows import (
    E2E_NOTE,
    FIDELITY_NOTE,
    LOSS_NOTE,
    RUNS_NOTE,
    SUMMARY_ALIGN,
    SUMMARY_HEADERS,
    ResultRow,
    sizes_line,
    summary_rows,
    with_e2e,
)
from edgeres.validate.figures import cpu_lines, footnotes


def _markdown_table(headers: list[str], rows: list[tuple[str, ...]], align: str) -> str:
    def esc(c: str) -> str:
        return str(c).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |",
             "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


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
                       ("runs", "timed runs"), ("iterations", "timed runs"), ("seconds", "time budget (s)")):
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


def _rows_section(rows: list[ResultRow], headers: list[str], body: list[tuple[str, ...]], align: str,
                  plot_written: bool, plot_note: str | None) -> list[str]:
    """The table, what its columns mean, and the plot."""
    out = [_markdown_table(headers, body, align), ""]
    if any(r.fidelity_only for r in rows):
        out += [FIDELITY_NOTE, ""]
    if "e2e p50" in headers:
        out += [E2E_NOTE, ""]
    out += [f"- {line}" for line in footnotes(rows)] + [""] if footnotes(rows) else []
    out += [RUNS_NOTE, ""]
    if any(r.loss for r in rows):
        out += [LOSS_NOTE, ""]
    if sizes_line(rows):
        out += [str(sizes_line(rows)), ""]
    out += [("top-1 drop: the FP32 reference's top-1 minus this row's, in points; agreement: how often the top "
             "class equals the FP32 reference's."), ""]
    if plot_written:
        out += [f"![accuracy vs latency]({PLOT_PNG})", ""]
    elif plot_note:
        out += [f"(no plot: {plot_note})", ""]
    return out


def render_markdown(report: Report, plot_written: bool, plot_note: str | None) -> str:
    rows = report.rows
    show_source = len({r.source for r in rows}) > 1
    headers, align, body = with_e2e(rows, list(SUMMARY_HEADERS), SUMMARY_ALIGN[: len(SUMMARY_HEADERS)],
                                    summary_rows(rows))
    if show_source:
        headers, align = ["from", *headers], "l" + align
        body = [(r.source or "-", *b) for r, b in zip(rows, body)]
    out = [f"# {report.title}", ""]
    if report.model:
        m = report.model
        bits = [f"ResNet-{m['depth']}" if m.get("depth") else None,
                f"{m['num_classes']} classes" if m.get("num_classes") else None,
                f"{m['input_size']}x{m['input_size']} input" if m.get("input_size") else None,
                f"weights: {m['weights']}" if m.get("weights") else None,
                f"class names from {m['classes_from']}" if m.get("classes_from") else None]
        out += [", ".join(b for b in bits if b), ""]
    if not rows:
        out += ["No measured rows: nothing was timed here (the notes say where the rows come from).", ""]
    else:
        out += _rows_section(rows, headers, body, align, plot_written, plot_note)
    out += profile_section(rows)
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
        out += [f"- {line}" for line in cpu_lines(env)]
        versions = {**(env.get("backends") or {}), **(env.get("packages") or {})}
        shown = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        if shown:
            out.append(f"- versions: {shown}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
