"""The report document: rows plus where and how they were measured, and its JSON form (``report.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeres import __version__
from edgeres.errors import EdgeresError
from edgeres.fileio import now_utc
from edgeres.report.rows import ResultRow, as_rows, summary_table

SCHEMA = "edgeres.report"
SCHEMA_VERSION = 1
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PLOT_PNG = "accuracy_latency.png"
KIT_REPORT_JSON = "kit-report.json"


@dataclass
class Report:
    """A build's (or a merge's) rows with the environment and timing they were measured under."""

    rows: list[ResultRow]
    environment: dict[str, Any]
    timing: dict[str, Any] = field(default_factory=dict)
    title: str = "edgeres report"
    model: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    merged_from: list[dict[str, Any]] = field(default_factory=list)
    created: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "edgeres_version": __version__,
            "created": self.created or now_utc(), "title": self.title, "model": self.model,
            "environment": self.environment, "timing": self.timing,
            "recommended": self.recommended(),
            "rows": [r.to_dict() for r in self.rows], "notes": self.notes, "merged_from": self.merged_from,
        }

    def recommended(self) -> list[dict[str, Any]]:
        """The recommended rows by index (a build has at most one; a merge, one per build)."""
        return [{"row": i, "target": r.target, "precision": r.precision, "source": r.source}
                for i, r in enumerate(self.rows) if r.recommended]

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
