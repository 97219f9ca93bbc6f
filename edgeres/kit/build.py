"""``edgeres kit build`` on the device: build the kit's engines with the target's backend,
then measure each (run on the validation slice, compare with the FP32 reference, time) and
write ``kit-report.json`` plus the same report any build writes.

Every precision is built on the GPU; where the device has DLA cores and its TensorRT drives
them, FP16/INT8 are also built on DLA core 0 as rows of their own (``tensorrt_recipes``), and
the recommendation picks among all rows by the rule every build uses. Before building, the
device's release, versions, power mode and clock state are recorded (``tensorrt_device``).

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
from edgeres.backends.tensorrt_recipes import (
    EngineVariant,
    dla_supported,
    engine_variants,
    recipe_for,
    variant_batch,
)
from edgeres.errors import EdgeresError, UsageError
from edgeres.fileio import now_utc, write_json_atomic
from edgeres.kit.layout import REPORT_JSON, ROLE_TO_ONNX, Kit, load_kit
from edgeres.measure import measure

TIMING_WHAT = ("host wall clock per call, H2D + execute_async_v3 + D2H + sync "
               "(device time of execute_async_v3 alone, from CUDA events, in each row's extra.device_latency)")


def _require_a_kit_backend() -> None:
    """Once the request is checked against the kit: the clear "not installed / no GPU" error when no
    backend that builds from kits is usable on this machine."""
    errors = []
    for backend in (b for b in map(get_backend, backend_names()) if b.builds_from_kit):
        try:
            backend.require()
            return
        except EdgeresError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def check_request(kit: Kit, target: Any, wanted: Sequence[str], batch_sizes: Sequence[int] | None,
                  options: Mapping[str, Any]) -> None:
    """Refuse, from kit.json alone (no TensorRT needed), what the kit cannot build: a precision it
    lacks or its target refuses, a batch outside its profile, a DLA core its device does not have."""
    from edgeres.backends.tensorrt_plan import check_target_precision
    from edgeres.backends.tensorrt_target import dla_core_problem

    for p in wanted:
        check_target_precision(target.name, target.precisions, target.device, p)
        if p not in kit.precisions:
            raise UsageError(f"kit was written for {', '.join(kit.precisions)}, not {p}: rewrite it with "
                             f"--precision {','.join(sorted(set(kit.precisions) | {p}))}")
    batch = kit.batch()
    outside = [n for n in batch_sizes or () if not batch.min <= n <= batch.max]
    if outside:
        raise UsageError(f"--batch {','.join(map(str, outside))}: the kit's engines take batch {batch.min} to "
                         f"{batch.max} (batch profile {batch})")
    if options.get("dla_core") is not None:
        problem = dla_core_problem(int(options["dla_core"]), target.device, target.name)
        if problem:
            raise UsageError(f"--dla-core: {problem}")


def _check_device(kit: Kit, backend: Backend, target: Any, wanted: list[str]) -> list[str]:
    """Refuse what this device cannot build; warnings about what it builds differently."""
    from edgeres.backends.tensorrt_plan import parse_version

    backend.require()
    available = backend.available()
    for p in wanted:
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


def _build_one(kit: Kit, backend: Backend, target: Any, variant: EngineVariant, out_dir: Path,
               options: dict[str, Any]) -> Any:
    """The engine for one variant (a precision on the GPU or a DLA core) from the kit's ONNX, through the backend."""
    precision = variant.precision
    onnx = kit.manifest["onnx"]
    graph = onnx["int8" if precision == "int8" else "fp32"]
    given = {}   # the kit's FP16 forms, which strongly typed builds take instead of converting on the device
    if onnx.get("fp16"):
        given["fp16_onnx"] = str(kit.file(onnx["fp16"]))
    if onnx.get("int8_fp16"):
        given["qdq_fp16_onnx"] = str(kit.file(onnx["int8_fp16"]))
    spec = BuildSpec(target=target, precision=precision, out_dir=out_dir, batch=variant_batch(variant, kit.batch()),
                     options={**options, **given, "dla_core": -1 if variant.dla_core is None else variant.dla_core})
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
    kit = load_kit(kit_path)
    target = kit.target()
    wanted = list(precisions) if precisions else kit.precisions
    check_request(kit, target, wanted, batch_sizes, options or {})
    _require_a_kit_backend()
    backend = get_backend(target.backend)
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
    variants, device, notes = _variants_and_device(backend, wanted, build_options, say)
    warnings += notes
    rows: list[dict[str, Any]] = []
    for n, v in enumerate(variants, 1):
        say(f"[{n}/{len(variants)}] building {v.label} from the kit's ONNX ...")
        t0 = time.perf_counter()
        try:
            artifact = _build_one(kit, backend, target, v, out_dir, build_options)
        except EdgeresError as exc:
            if v.dla_core is None:
                raise
            warnings.append(f"{v.label} not built: {exc}")   # a DLA row never costs the GPU rows
            continue
        build_s = time.perf_counter() - t0
        v_sizes = sizes if v.dla_core is None else [kit.batch().opt]   # DLA engines have one static batch
        say(f"[{n}/{len(variants)}] validating {v.label} on {len(inputs)} inputs, then timing it (host wall clock, "
            "then device time) ...")
        with backend.load(artifact) as runner:
            m = measure(runner, inputs, artifact=artifact, target=target.name, input_shape=(c, h, w),
                        batch_sizes=v_sizes, labels=labels, reference=reference, min_runs=iterations,
                        min_seconds=min_seconds, warmup=warmup, fidelity_only=labels is None,
                        progress=f"validate {v.label}")
            profile = _profile(runner, say)
        measured = m.row()
        plan = artifact.metadata["plan"]
        rows.append({
            "target": m.target, "backend": m.backend, "precision": v.label,
            "execution_precision": m.execution_precision,
            "accuracy": m.accuracy.to_dict(), "latency": [r.to_dict() for r in m.latency],
            "size_bytes": m.size_bytes, "build_seconds": round(build_s, 2), "fidelity_only": m.fidelity_only,
            "device": f"{m.device}, {v.device}", "timed": m.latency[0].timed if m.latency else None,
            "notes": list(plan["notes"]),
            **{k: measured[k] for k in ("throughput", "throughput_label", "load_warning", "execution_note")},
            "extra": {"engine": str(artifact.path), "engine_device": v.device, "onnx": _kit_file(kit, artifact),
                      "typed_mode": plan["typed_mode"], "plan": plan, "clocks_locked": device.get("clocks_locked"),
                      "dla_gpu_fallback_layers": artifact.metadata.get("dla_gpu_fallback_layers"),
                      "device_latency": [r.to_dict() for r in m.device_latency],
                      "throughput": measured["extra"]["throughput"], "profile": profile},
        })
    best, why = _recommend(rows, float(target.accuracy_budget), labels is not None)
    for row in rows:
        row["recommended"] = row["precision"] == best  # ringed in the report's plot
    if best:
        warnings.append(f"recommended engine on {target.name}: {best} ({why})")
    validation = {"n": len(inputs), "labels": labels is not None}
    return _write_report(kit, target, backend, rows, warnings, out_dir, validation,
                         {"batch": sizes, "warmup": warmup,
                          "runs": f"until at least {iterations} runs and {min_seconds:g} s",
                          "clocks_locked": device.get("clocks_locked")},
                         {"device": device, "recommended": best, "recommended_why": why if best else None})


def _variants_and_device(backend: Backend, wanted: list[str], options: dict[str, Any],
                         say: Callable[[str], None]) -> tuple[list[EngineVariant], dict[str, Any], list[str]]:
    """What this device is (release, versions, power, clocks), and the engines to build on it."""
    from edgeres.backends.tensorrt_device import clock_note, device_facts
    from edgeres.backends.tensorrt_plan import parse_version, resolve_options

    env = backend.environment()
    version = parse_version(str(env.get("tensorrt")))
    num_dla = int(env.get("dla_cores") or 0)
    facts = device_facts(str(env.get("tensorrt")), env.get("gpu") or {}, num_dla)
    say(f"device: {facts.get('board') or (env.get('gpu') or {}).get('name')}, TensorRT {env.get('tensorrt')} "
        f"(recipe {recipe_for(version).name}), {num_dla} DLA core(s), power mode "
        f"{(facts.get('nvpmodel') or {}).get('name', 'n/a')}, clocks locked: {facts.get('clocks_locked')}")
    facts["recipe"] = recipe_for(version).name
    variants, notes = engine_variants(wanted, resolve_options(options), num_dla if dla_supported(version) else 0)
    if num_dla and not dla_supported(version):
        notes.append(f"TensorRT {env.get('tensorrt')} does not drive the DLA on Jetson (10.8 - 11.4.0): GPU rows only")
    clocks = clock_note(facts)
    return variants, facts, notes + ([clocks] if clocks else [])


def _kit_file(kit: Kit, artifact: Any) -> str:
    """The kit-relative path of the ONNX an engine was built from."""
    name = artifact.metadata["onnx"]["file"]
    return next((rel for rel in kit.manifest["onnx"].values() if Path(rel).name == name), name)


def _recommend(rows: list[dict[str, Any]], budget: float, labeled: bool) -> tuple[str | None, str]:
    """The fastest row within the accuracy budget, by the rule every edgeres build uses, and why."""
    from edgeres.validate.recommend import recommend

    flat = []
    for r in rows:
        acc = r["accuracy"]
        b1: dict[str, Any] = min(r["latency"], key=lambda lat: lat["batch_size"], default={})
        drop = None if acc.get("top1") is None or acc.get("reference_top1") is None else \
            acc["reference_top1"] - acc["top1"]
        flat.append({"precision": r["precision"], "top1_drop": drop, "agreement": acc.get("agreement"),
                     "p50_ms": b1.get("p50_ms"), "execution_precision": r.get("execution_precision")})
    measure_name = "top-1 drop" if labeled else "loss of top-1 agreement with FP32"
    why = (f"fastest p50 at batch 1 among {len(rows)} engines (GPU and DLA alike) whose {measure_name} is "
           f"within {budget} points")
    return recommend(flat, budget, labeled), why


def _profile(runner: Any, say: Any) -> dict[str, Any] | None:
    """Per-layer time (the runtime's profiler: TensorRT's IProfiler), grouped by stage; None when
    the runner cannot profile."""
    from edgeres.validate.layers import profile_runner

    try:
        return profile_runner(runner, batch=1, runs=20)
    except EdgeresError as exc:
        say(f"no per-layer profile: {exc}")
        return None


def _write_report(kit: Kit, target: Any, backend: Backend, rows: list[dict[str, Any]], warnings: list[str],
                  out_dir: Path, validation: dict[str, Any], runs: dict[str, Any],
                  found: dict[str, Any]) -> dict[str, Any]:
    """``kit-report.json`` (the kit's own format), and report.json/.md as any build writes them."""
    env = {**backend.environment(), "edgeres": __version__}
    recipe = found["device"].pop("recipe", None)
    device = env.get("gpu", {}).get("name") if isinstance(env.get("gpu"), dict) else None
    timing = {"where": backend.timed_on, "what": TIMING_WHAT, **runs}
    report = {
        "schema": "edgeres-kit-report", "schema_version": 1, "edgeres_version": __version__,
        "title": f"kit report: {target.name} on {device}",
        "created": now_utc(),
        "kit": str(kit.root), "target": target.name, "backend": backend.name, "model": kit.manifest.get("model", {}),
        "environment": {**env, "recipe": recipe, "device": found["device"]}, "timing": timing, "notes": warnings,
        "validation": validation, "recommended": found["recommended"], "recommended_why": found["recommended_why"],
        "rows": rows,
    }
    write_json_atomic(out_dir / REPORT_JSON, report)
    from edgeres.hostinfo import environment
    from edgeres.report import write_report

    write_report(rows, out_dir, timing=timing, title=report["title"], model=report["model"], notes=warnings,
                 env={**environment(), **env})
    return report
