"""One report from many devices: each device's rows under its own name, device states kept apart.

Each device that answered gets its own report in ``OUT/devices/NAME/`` (readable alone, and by
``edgeres report``); the fleet report is ``merge_reports`` of those, plus what the merge cannot
know: which devices failed and why, and which rows were measured under different device states
(power mode, clocks, governor, threads), which are marked and never silently compared.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.fileio import write_json_atomic
from edgeres.report import Report, as_rows, merge_reports, write_report
from edgeres.report.rows import PRECISION_ORDER

FLEET_JSON = "fleet.json"


@dataclass
class DeviceRun:
    """One device's part of a fleet run."""

    name: str
    target: str
    model: str
    status: str = "pending"            # ok, failed-preflight, failed, dead, hung, cancelled
    reason: str | None = None
    answer: dict[str, Any] = field(default_factory=dict)   # the device's JSON answer
    retry_of: str | None = None        # this run repeats a failed device's measurement
    retried_on: str | None = None
    seconds: float | None = None

    @property
    def label(self) -> str:
        return f"{self.name} (retry for {self.retry_of})" if self.retry_of else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.name, "target": self.target, "model": self.model, "status": self.status,
                "reason": self.reason, "retry_of": self.retry_of, "retried_on": self.retried_on,
                "seconds": self.seconds, "rows": len(self.answer.get("rows") or []),
                "state": state_of(self.answer.get("device") or {})}


def state_of(device: dict[str, Any]) -> dict[str, Any]:
    """A device's measuring state from its preflight (see ``DeviceInfo.state``)."""
    return {"threads": device.get("threads"), **(device.get("power") or {})}


def describe_state(state: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in state.items() if v is not None) or "not readable"


def write_device_report(run: DeviceRun, out: Path, model: dict[str, Any]) -> Path:
    """``out/devices/LABEL/report.json``: one device's rows, environment and timing, named for the device."""
    answer = run.answer
    device = answer.get("device") or {}
    env = {**(answer.get("environment") or {}), "device": run.name, "model": device.get("model"),
           "state": state_of(device), "cpu_flags": device.get("cpu_flags"), "jetpack": device.get("jetpack")}
    rows = [{**r, "source": run.label} for r in answer.get("rows") or []]
    where = out / "devices" / run.label.replace(" ", "_").replace("(", "").replace(")", "")
    timing = answer.get("timing") or {}
    title = f"{run.label}: {run.target} ({device.get('model')})"
    sub = {"label": run.label, "environment": env, "timing": timing, "path": str(where), "title": title}
    report = Report(rows=as_rows(rows), environment=env, timing=timing, title=title, model=model,
                    merged_from=[sub])
    write_report(report, where)
    return where


def state_notes(report: Report, runs: list[DeviceRun]) -> list[str]:
    """Mark rows whose target was measured under more than one device state; notes that say so."""
    by_label = {r.label: state_of(r.answer.get("device") or {}) for r in runs if r.status == "ok"}
    notes = []
    for target in sorted({row.target for row in report.rows}):
        rows = [row for row in report.rows if row.target == target]
        states: list[dict[str, Any]] = []
        for row in rows:
            state = {**by_label.get(row.source or "", {}), "threads": row.threads or by_label.get(row.source or "",
                                                                                                   {}).get("threads")}
            if state not in states:
                states.append(state)
            row.extra["device_state"] = state
        if len(states) == 1:
            notes.append(f"{target}: every device measured in the same state ({describe_state(states[0])})")
            continue
        names = dict(zip((tuple(sorted(s.items())) for s in states), string.ascii_uppercase))
        for row in rows:
            letter = names[tuple(sorted(row.extra["device_state"].items()))]
            row.notes.append(f"device state {letter}")
        listed = "; ".join(f"{names[tuple(sorted(s.items()))]}: {describe_state(s)}" for s in states)
        notes.append(f"{target}: rows were measured under {len(states)} device states ({listed}); compare "
                     "latencies only within one state")
    return notes


def failure_notes(runs: list[DeviceRun]) -> list[str]:
    notes = []
    for run in runs:
        if run.status == "ok":
            continue
        retry = f"; retried on {run.retried_on}" if run.retried_on else "; no other device of this kind to retry on"
        notes.append(f"device {run.label} ({run.target}): {run.status}: {run.reason}{retry if not run.retry_of else ''}")
    return notes


def merge_fleet(runs: list[DeviceRun], out: Path, *, title: str, model: dict[str, Any],
                extra: dict[str, Any]) -> Report | None:
    """Write every answering device's report, the merged report (json, md, png) and ``fleet.json``."""
    out.mkdir(parents=True, exist_ok=True)
    done = [r for r in runs if r.status == "ok" and r.answer.get("rows")]
    report = None
    if done:
        paths: list[str | os.PathLike[str]] = [write_device_report(r, out, model) for r in done]
        report = merge_reports(paths, title=title)
        report.rows.sort(key=lambda row: (row.target, str(row.source), PRECISION_ORDER.get(row.precision, 9)))
        report.notes = [*failure_notes(runs), *state_notes(report, runs), *extra.get("notes", []), *report.notes]
        write_report(report, out)
    write_json_atomic(out / FLEET_JSON, {"schema": "edgeres-fleet", "schema_version": 1, **extra,
                                         "devices": [r.to_dict() for r in runs],
                                         "report": str(out / "report.json") if report else None})
    return report
