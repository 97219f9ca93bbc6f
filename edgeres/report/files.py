"""Writing a report folder and reading one back (a build's ``report.json`` or a device kit's ``kit-report.json``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgeres import schemas
from edgeres.errors import EdgeresError
from edgeres.fileio import load_json, write_json_atomic, write_text_atomic
from edgeres.hostinfo import environment
from edgeres.report.document import KIT_REPORT_JSON, PLOT_PNG, REPORT_JSON, REPORT_MD, SCHEMA, Report
from edgeres.report.markdown import render_markdown
from edgeres.report.plot import plot_title, write_plot
from edgeres.report.rows import as_rows


def check_report_out(out_dir: Path) -> None:
    """Refuse an ``edgeres report --out`` that would replace a user's own files or write into a
    bundle or kit (whose files are checksummed), before any work is done."""
    from edgeres.fileio import check_folder_path

    check_folder_path(out_dir)
    for marker, what in (("manifest.json", "a bundle"), ("kit.json", "a device kit")):
        if (out_dir / marker).is_file():
            raise EdgeresError(f"--out {out_dir} is {what}: a report goes into a folder of its own")
    ours = False
    if (out_dir / REPORT_JSON).is_file():
        try:
            ours = load_json(out_dir / REPORT_JSON, "report").get("schema") == SCHEMA
        except EdgeresError:
            ours = False
    theirs = [n for n in (REPORT_JSON, REPORT_MD, PLOT_PNG) if (out_dir / n).exists()] if not ours else []
    if theirs:
        raise EdgeresError(f"--out {out_dir} holds {', '.join(theirs)} that edgeres did not write: choose another "
                           "--out, or move them away")


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
    plot_note = write_plot(report.rows, out_dir / PLOT_PNG, plot_title(report))
    if plot_note and (out_dir / PLOT_PNG).exists():
        (out_dir / PLOT_PNG).unlink()  # a stale plot from an earlier report would mislead
    if plot_note and report.rows and not any(plot_note in n for n in report.notes):
        report.notes.append(f"accuracy_latency.png not written: {plot_note}")
    write_json_atomic(out_dir / REPORT_JSON, report.to_dict())
    write_text_atomic(out_dir / REPORT_MD, render_markdown(report, plot_note is None, plot_note))
    return report


def read_report(path: str | os.PathLike[str]) -> Report:
    """A report from a folder (``report.json`` or ``kit-report.json`` inside) or a JSON file."""
    p = Path(path)
    if p.is_dir():
        p = _report_in_folder(p)
    if not p.is_file():
        raise EdgeresError(f"report {p} does not exist")
    data = load_json(p, "report")
    if data.get("schema") != SCHEMA and "rows" in data:  # a kit report brought back from a device
        data = _from_kit_report(schemas.check(schemas.KitReport, data, f"kit report {p}"))
    elif data.get("schema") == SCHEMA:
        schemas.check(schemas.Report, data, f"report {p}")
    return Report.from_dict(data, str(p))


def _report_in_folder(folder: Path) -> Path:
    """The report file in a build folder, a kit's engines folder, or a kit folder (its report is in ``engines/``)."""
    for where in (folder, folder / "engines"):
        for name in (REPORT_JSON, KIT_REPORT_JSON):
            if (where / name).is_file():
                return where / name
    if (folder / "kit.json").is_file():
        raise EdgeresError(f"kit {folder} has no report yet: run `edgeres kit build {folder.name}` on the device, then "
                           f"bring {folder.name}/engines/{KIT_REPORT_JSON} back")
    raise EdgeresError(f"{folder} has no {REPORT_JSON} or {KIT_REPORT_JSON}; is it a build or kit output folder?")


def _from_kit_report(d: dict[str, Any]) -> dict[str, Any]:
    """Accept a device kit's report: rows in the same format, environment and timing alongside."""
    return {"schema": SCHEMA, "schema_version": 1, "title": d.get("title") or f"kit report: {d.get('target', '?')}",
            "model": d.get("model") or {}, "environment": d.get("environment") or {},
            "timing": d.get("timing") or {}, "notes": d.get("notes") or [],
            # rows name their target and backend; kit reports written before they did were all TensorRT
            "rows": [{"target": d.get("target"), "backend": d.get("backend", "tensorrt"),
                      "recommended": r.get("precision") == d.get("recommended"), **r} for r in d["rows"]],
            "created": d.get("created")}

