"""The task a device runs: preflight, check what arrived, measure, answer in JSON.

Torch-free and Ray-free: Ray calls ``measure_on_device`` on the device's node, and a test
(or a person) can call it directly. The answer is a JSON text, so the host parses a device's
results with ``json.loads`` and never unpickles anything a device built.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.errors import EdgeresError
from edgeres.fleet.payload import load_payload, unpack
from edgeres.fleet.preflight import preflight


def measure_on_device(data: bytes, sha256: str, settings_json: str) -> str:
    """Run one payload on this device. ``settings``: target, kind, device (its name), iterations,
    warmup, batch_sizes. Returns JSON: status ("ok", "failed-preflight", "failed"), reason, device
    (its preflight), and with "ok" the rows, what was timed and the environment."""
    settings = json.loads(settings_json)
    info = preflight(settings["target"], name=settings.get("device"))
    answer: dict[str, Any] = {"device": info.to_dict()}
    if info.problems:
        return json.dumps({**answer, "status": "failed-preflight", "reason": "; ".join(info.problems)})
    with tempfile.TemporaryDirectory(prefix="edgeres-fleet-") as tmp:
        try:
            root = unpack(data, sha256, Path(tmp))
            rows, timing = measure(root, settings)
        except EdgeresError as exc:
            return json.dumps({**answer, "status": "failed", "reason": str(exc)})
    from edgeres.hostinfo import environment

    return json.dumps({**answer, "status": "ok", "rows": rows, "timing": timing, "environment": environment()},
                      default=str)


def measure(root: Path, settings: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Report rows and what was timed, for an unpacked payload: ``kit build`` for a kit, and for
    bundles the measure step every other command uses (``edgeres.measure``)."""
    iterations, warmup = int(settings.get("iterations", 50)), int(settings.get("warmup", 10))
    seconds = float(settings.get("seconds", 2.0))
    sizes = settings.get("batch_sizes") or [1]
    if settings["kind"] == "kit":
        from edgeres.kit import build_kit

        report = build_kit(root, out=root / "engines", batch_sizes=sizes, iterations=iterations,
                           min_seconds=seconds, warmup=warmup)
        return report["rows"], report["timing"]
    manifest = load_payload(root)
    validation = manifest["validation"]
    inputs = np.load(root / validation["inputs"], allow_pickle=False)
    reference = np.load(root / validation["reference_logits"], allow_pickle=False)
    labels = np.load(root / validation["labels"], allow_pickle=False) if "labels" in validation else None
    rows = [_measure_bundle(root / rel, inputs, labels, reference, sizes, iterations, seconds, warmup)
            for rel in manifest["bundles"].values()]
    first = rows[0]["extra"]["latency"][0] if rows else {}
    timing = {"where": "device", "what": first.get("timed"), "batch": sizes, "warmup": warmup,
              "iterations": iterations, "seconds": seconds, "threads": first.get("threads")}
    return rows, timing


def _measure_bundle(path: Path, inputs: np.ndarray, labels: np.ndarray | None, reference: np.ndarray,
                    sizes: list[int], iterations: int, seconds: float, warmup: int) -> dict[str, Any]:
    from edgeres.bundle import load_bundle
    from edgeres.measure import measure as measure_artifact

    with load_bundle(path) as bundle, bundle.load_runner() as runner:  # checksums verified on loading
        return measure_artifact(runner, inputs, artifact=bundle.artifact(), target=bundle.target,
                                input_shape=bundle.sample_shape, batch_sizes=sizes, labels=labels,
                                reference=reference, min_runs=iterations, min_seconds=seconds, warmup=warmup,
                                fidelity_only=labels is None).row()
