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

CHUNK = 32  # validation inputs per call


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
    """Report rows and what was timed, for an unpacked payload: the one place that measures.

    Today: ``kit build`` for a kit, validate + bench for bundles (the functions those commands use).
    """
    iterations, warmup = int(settings.get("iterations", 50)), int(settings.get("warmup", 10))
    sizes = settings.get("batch_sizes") or [1]
    if settings["kind"] == "kit":
        from edgeres.bundle.kit import build_kit

        report = build_kit(root, out=root / "engines", batch_sizes=sizes, iterations=iterations, warmup=warmup)
        return [{"target": report["target"], "backend": "tensorrt", **r} for r in report["rows"]], report["timing"]
    manifest = load_payload(root)
    validation = manifest["validation"]
    inputs = np.load(root / validation["inputs"], allow_pickle=False)
    reference = np.load(root / validation["reference_logits"], allow_pickle=False)
    labels = np.load(root / validation["labels"], allow_pickle=False) if "labels" in validation else None
    rows = [_measure_bundle(root / rel, precision, inputs, labels, reference, sizes, iterations, warmup)
            for precision, rel in manifest["bundles"].items()]
    first = rows[0]["extra"]["latency"][0] if rows else {}
    timing = {"where": "device", "what": first.get("timed"), "batch": sizes, "warmup": warmup,
              "iterations": iterations, "threads": first.get("threads")}
    return rows, timing


def _measure_bundle(bundle: Path, precision: str, inputs: np.ndarray, labels: np.ndarray | None,
                    reference: np.ndarray, sizes: list[int], iterations: int, warmup: int) -> dict[str, Any]:
    from edgeres.validate import compare, measure_latency
    from edgeres.validate.evaluate import open_for_bench
    from edgeres.validate.metrics import run_batch

    opened = open_for_bench(bundle)
    try:
        logits = np.concatenate([run_batch(opened.runner, inputs[s:s + CHUNK]) for s in range(0, len(inputs), CHUNK)])
        acc = compare(logits, labels, reference)
        latency = measure_latency(opened.runner, opened.input_shape, batch_sizes=sizes, iterations=iterations,
                                  warmup=warmup)
        info = dict(getattr(opened.runner, "info", None) or {})
    finally:
        if opened.close:
            opened.close()
    b1, bmax = latency[0], latency[-1]
    return {"target": opened.description.get("target"), "backend": opened.description.get("backend"),
            "precision": precision, "execution_precision": info.get("execution_precision"),
            "top1": acc.top1, "top5": acc.top5, "top1_drop": acc.top1_drop, "agreement": acc.agreement,
            "cosine": acc.cosine, "p50_ms": b1.p50_ms, "p99_ms": b1.p99_ms, "batch": b1.batch_size,
            "throughput": bmax.throughput, "fidelity_only": labels is None, "device": info.get("device"),
            "timed": b1.timed, "threads": b1.threads,
            "size_bytes": sum(p.stat().st_size for p in bundle.iterdir() if p.is_file()),
            "extra": {"latency": [r.to_dict() for r in latency], "n_images": acc.n, "throughput_batch": bmax.batch_size}}
