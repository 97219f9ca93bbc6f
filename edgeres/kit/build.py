"""``edgeres kit build`` on the device: build the kit's engines with the target's backend,
then measure each (run on the validation slice, compare with the FP32 reference, time) and
write ``kit-report.json`` plus the same report any build writes.

Torch-free: the backend, numpy, and ``edgeres.measure``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeres import __version__
from edgeres.backends import BuildSpec, backend_names, get_backend
from edgeres.backends.base import Backend
from edgeres.errors import EdgeresError
from edgeres.fileio import now_utc, write_json_atomic
from edgeres.kit.layout import REPORT_JSON, ROLE_TO_ONNX, Kit, load_kit
from edgeres.measure import measure

TIMING_WHAT = ("host wall clock per call, H2D + execute_async_v3 + D2H + sync "
               "(device time of execute_async_v3 alone, from CUDA events, in each row's extra.device_latency)")


def _require_a_kit_backend() -> None:
    """Before reading any kit: the clear "not installed / no GPU" error when no backend that
    builds from kits is usable on this machine."""
    errors = []
    for backend in (b for b in map(get_backend, backend_names()) if b.builds_from_kit):
        try:
            backend.require()
            return
        except EdgeresError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def _check_device(kit: Kit, backend: Backend, target: Any, wanted: list[str]) -> list[str]:
    """Refuse what this device cannot build; warnings about what it builds differently."""
    from edgeres.backends.tensorrt_plan import check_target_precision, parse_version

    backend.require()
    available = backend.available()
    for p in wanted:
        check_target_precision(target.name, target.precisions, target.device, p)
        if p not in kit.precisions:
            raise EdgeresError(f"kit was written for {', '.join(kit.precisions)}, not {p}: rewrite it with "
                               f"--precision {','.join(sorted(set(kit.precisions) | {p}))}")
        reason = backend.unsupported(p, target)
        if reason:
            raise EdgeresError(f"{p} on {available.details.get('gpu')}: {reason}")
    if parse_version(str(available.version)) < parse_version(kit.manifest["min_tensorrt"]):
        raise EdgeresError(f"TensorRT {available.version} is older than the kit's minimum "
                           f"{kit.manifest['min_tensorrt']}")
    warnings = []
    declared, here = target.device.get("compute_capability"), available.details.get("compute_capability")
    if declared not in (None, "device") and str(declared) != str(here):
        warnings.append(f"kit targets {target.name} (compute capability {declared}) but this GPU "
                        f"{available.details.get('gpu')} is {here}: the engines are built for this GPU")
    return warnings


def _build_one(kit: Kit, backend: Backend, target: Any, precision: str, out_dir: Path,
               options: dict[str, Any]) -> Any:
    """The engine for ``precision`` from the kit's ONNX, through the backend."""
    graph = kit.manifest["onnx"]["int8" if precision == "int8" else "fp32"]
    fp16 = kit.manifest["onnx"].get("fp16")
    spec = BuildSpec(target=target, precision=precision, out_dir=out_dir, batch=kit.batch(),
                     options={**options, **({"fp16_onnx": str(kit.file(fp16))} if fp16 else {})})
    artifact = backend.build(kit.file(graph), spec)
    used = ROLE_TO_ONNX[artifact.metadata["plan"]["onnx_role"]]
    if used not in kit.manifest["onnx"]:
        raise EdgeresError(f"kit has no {used} ONNX, which a {precision} build needs")
    artifact.metadata["kit"] = {"created_at": kit.manifest.get("created_at"), "model": kit.manifest.get("model")}
    return artifact.save()


def build_kit(kit_path: str | os.PathLike[str], *, precisions: Sequence[str] | None = None,
              out: str | os.PathLike[str] | None = None, batch_sizes: Sequence[int] | None = None,
              iterations: int = 100, min_seconds: float = 3.0, warmup: int = 10,
              options: Mapping[str, Any] | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """On the device: build the kit's engines, validate and benchmark them, write ``kit-report.json``.

    Each latency figure is timed for at least ``iterations`` runs and ``min_seconds`` (trtexec:
    3 s); throughput is measured apart, in the runner's throughput mode (TensorRT: several
    execution contexts on their own CUDA streams, as ``trtexec --streams``). Returns the report. ``options`` override the kit's backend options (e.g. dla_core,
    typed_mode); ``out`` defaults to ``KIT/engines``.
    """
    say = log or (lambda _msg: None)
    _require_a_kit_backend()
    kit = load_kit(kit_path)
    target = kit.target()
    backend = get_backend(target.backend)
    wanted = list(precisions) if precisions else kit.precisions
    kit.verify()
    warnings = _check_device(kit, backend, target, wanted)
    build_options = {**kit.manifest.get("options", {}), **target.options, **(options or {})}
    out_dir = Path(out) if out else kit.root / "engines"
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs, labels, reference = kit.validation()
    batch = kit.batch()
    sizes = list(batch_sizes) if batch_sizes else sorted({1, batch.opt, batch.max})
    if inputs.ndim != 4:
        raise EdgeresError(f"the kit's validation inputs are {inputs.shape}, not (N, C, H, W)")
    c, h, w = (int(d) for d in inputs.shape[1:])
    rows: list[dict[str, Any]] = []
    for p in wanted:
        say(f"building {p} from the kit's ONNX ...")
        t0 = time.perf_counter()
        artifact = _build_one(kit, backend, target, p, out_dir, build_options)
        build_s = time.perf_counter() - t0
        say(f"validating {p} on {len(inputs)} inputs, then timing it (host wall clock, then device time) ...")
        with backend.load(artifact) as runner:
            m = measure(runner, inputs, artifact=artifact, target=target.name, input_shape=(c, h, w),
                        batch_sizes=sizes, labels=labels, reference=reference, min_runs=iterations,
                        min_seconds=min_seconds, warmup=warmup, fidelity_only=labels is None)
        measured = m.row()
        plan = artifact.metadata["plan"]
        rows.append({
            "target": m.target, "backend": m.backend, "precision": p, "execution_precision": m.execution_precision,
            "accuracy": m.accuracy.to_dict(), "latency": [r.to_dict() for r in m.latency],
            "size_bytes": m.size_bytes, "build_seconds": round(build_s, 2), "fidelity_only": m.fidelity_only,
            "device": m.device, "timed": m.latency[0].timed if m.latency else None, "notes": list(plan["notes"]),
            **{k: measured[k] for k in ("throughput", "throughput_label", "load_warning", "execution_note")},
            "extra": {"engine": str(artifact.path), "typed_mode": plan["typed_mode"], "plan": plan,
                      "device_latency": [r.to_dict() for r in m.device_latency],
                      "throughput": measured["extra"]["throughput"]},
        })
    validation = {"n": len(inputs), "labels": labels is not None}
    return _write_report(kit, target, backend, rows, warnings, out_dir, validation,
                         {"batch": sizes, "warmup": warmup,
                          "runs": f"until at least {iterations} runs and {min_seconds:g} s"})


def _write_report(kit: Kit, target: Any, backend: Backend, rows: list[dict[str, Any]], warnings: list[str],
                  out_dir: Path, validation: dict[str, Any], runs: dict[str, Any]) -> dict[str, Any]:
    """``kit-report.json`` (the kit's own format), and report.json/.md as any build writes them."""
    env = {**backend.environment(), "edgeres": __version__}
    device = env.get("gpu", {}).get("name") if isinstance(env.get("gpu"), dict) else None
    timing = {"where": backend.timed_on, "what": TIMING_WHAT, **runs}
    report = {
        "schema": "edgeres-kit-report", "schema_version": 1, "edgeres_version": __version__,
        "title": f"kit report: {target.name} on {device}",
        "created": now_utc(),
        "kit": str(kit.root), "target": target.name, "backend": backend.name, "model": kit.manifest.get("model", {}),
        "environment": env, "timing": timing, "notes": warnings,
        "validation": validation,
        "rows": rows,
    }
    write_json_atomic(out_dir / REPORT_JSON, report)
    from edgeres.hostinfo import environment
    from edgeres.report import write_report

    write_report(rows, out_dir, timing=timing, title=report["title"], model=report["model"], notes=warnings,
                 env={**environment(), **env})
    return report
