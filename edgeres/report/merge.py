"""Merging reports: builds on this machine and kit reports from devices, compared in one table."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgeres.errors import EdgeresError
from edgeres.hostinfo import environment, environment_label
from edgeres.report.document import PLOT_PNG, Report
from edgeres.report.files import read_report
from edgeres.report.rows import ResultRow


def _machine(env: dict[str, Any]) -> dict[str, Any]:
    """The parts of an environment that make two measurements comparable as "the same machine"."""
    return {k: env.get(k) for k in ("cpu", "cpu_count", "gpu", "os", "board")}


IDENTITY = ("depth", "num_classes", "input_size", "weights_sha256", "preprocess", "classes")


def _same_model(models: list[dict[str, Any]]) -> bool:
    """The same network, weights and input in every report: where its checkpoint lay and where its
    class names came from (--labels or the class folders) do not make another model."""
    keys = [k for k in IDENTITY if all(k in m for m in models)]
    return all(m.get(k) == models[0].get(k) for m in models for k in keys)


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
    model = models[0] if models and _same_model(models) else {}
    notes = [n for _, rep in reports for n in rep.notes if not n.startswith(f"{PLOT_PNG} not written")]
    if len(models) > 1 and not model:
        notes.append("the merged reports are for different models; compare rows with care")
    return Report(rows=rows, environment=environment(), timing={}, title=title or "edgeres report (merged)",
                  model=model, notes=list(dict.fromkeys(notes)), merged_from=sources)
