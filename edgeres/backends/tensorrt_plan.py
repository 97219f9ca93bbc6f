"""The TensorRT engine planner: every decision about an engine, made without TensorRT.

Everything that decides *what* the builder does lives here, as data (an ``EnginePlan``):
which ONNX to parse, strongly vs weakly typed, which network and builder flags, the
workspace limit, the optimization profile, the DLA core. ``edgeres.backends.tensorrt``
then applies a plan to the real TensorRT API mechanically. Also here: version and
compute-capability parsing, what a GPU generation runs fast, the compatibility check
an engine's sidecar must pass before it is loaded, and the equivalent ``trtexec`` line.

Version facts this module encodes (checked against NVIDIA's documentation and the
TensorRT sources; see the README section on TensorRT):

- ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` exists from TensorRT 9.1. Weak typing
  and the precision builder flags (``BuilderFlag.FP16``/``INT8``) are deprecated from 10.12
  ("superseded by strong typing") and removed in 11, where every network is strongly typed.
  So edgeres builds strongly typed from 10.12 on and weakly typed before (8.5 .. 10.11,
  which covers JetPack 5's 8.5 and JetPack 6's 8.6 / 10.3), unless told otherwise.
- ``EXPLICIT_BATCH`` is required for ONNX networks before TensorRT 10, ignored
  (deprecated) in 10.x and removed in 11.
- ``Builder.platform_has_fast_fp16`` / ``platform_has_fast_int8`` are deprecated from 10.5
  ("query data type support from CUDA directly") and removed in 11: from 10.5 on edgeres
  derives them from the compute capability.
- ``IBuilderConfig.builder_optimization_level`` exists from TensorRT 8.6.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from edgeres.artifact import BatchProfile
from edgeres.errors import EdgeresError, UsageError

MIN_TENSORRT = (8, 5)
STRONGLY_TYPED_FLAG_FROM = (9, 1)
STRONGLY_TYPED_DEFAULT_FROM = (10, 12)
PRECISION_FLAGS_REMOVED_IN = (11, 0)
EXPLICIT_BATCH_UNTIL = (10, 0)  # required before, deprecated from
PLATFORM_QUERIES_DEPRECATED_FROM = (10, 5)
OPTIMIZATION_LEVEL_FROM = (8, 6)
TYPED_MODES = ("auto", "strong", "weak")
ENGINE_PRECISIONS = ("fp32", "fp16", "int8")

# Backend options a target file may set for backend = "tensorrt" (checked by edgeres.targets).
OPTIONS: dict[str, type] = {
    "workspace_mib": int,               # IBuilderConfig memory-pool limit for WORKSPACE
    "builder_optimization_level": int,  # 0..5, TensorRT >= 8.6 (ignored before, with a note)
    "dla_core": int,                    # -1: GPU only; N: DLA core N, where the device has one
    "gpu_fallback": bool,               # layers DLA cannot run fall back to the GPU
    "dla_variants": bool,               # kits: also build fp16/int8 on DLA core 0 as rows of their own
    "timing_cache": bool,               # load/save timing.cache beside the engine
    "typed_mode": str,                  # auto | strong | weak
    "min_tensorrt": str,                # oldest TensorRT the kit supports, e.g. "8.5"
}
DEFAULT_OPTIONS: dict[str, Any] = {
    "workspace_mib": 1024,
    "builder_optimization_level": 3,
    "dla_core": -1,
    "gpu_fallback": True,
    "dla_variants": False,
    "timing_cache": True,
    "typed_mode": "auto",
    "min_tensorrt": "8.5",
}


# --- versions and compute capabilities ---------------------------------------------------------

def parse_version(text: str | Sequence[int]) -> tuple[int, ...]:
    """'10.13.0.35' -> (10, 13, 0, 35); '8.5.2-1+cuda11.4' -> (8, 5, 2, 1)."""
    if not isinstance(text, str):
        return tuple(int(p) for p in text)
    numbers = re.findall(r"\d+", text.split("+")[0])
    if not numbers:
        raise EdgeresError(f"cannot read a TensorRT version from {text!r}")
    return tuple(int(n) for n in numbers)


def version_text(version: Sequence[int]) -> str:
    """(10, 13, 0) -> '10.13.0'."""
    return ".".join(map(str, version))


def parse_cc(value: str | float | Sequence[int]) -> tuple[int, int]:
    """A compute capability: '8.7', 8.7, 'sm_87', '87' or (8, 7) -> (8, 7)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise EdgeresError(f"compute capability {value!r} is not (major, minor)")
        return int(value[0]), int(value[1])
    text = str(value).strip().lower().removeprefix("sm_").removeprefix("sm")
    m = re.fullmatch(r"(\d+)\.(\d+)", text)
    if m:
        return int(m.group(1)), int(m.group(2))
    if re.fullmatch(r"\d{2,3}", text):
        return int(text[:-1]), int(text[-1])
    raise EdgeresError(f"compute capability {value!r} is not MAJOR.MINOR (e.g. 8.7)")


def cc_str(cc: tuple[int, int]) -> str:
    return f"{cc[0]}.{cc[1]}"


def has_fast_fp16(cc: tuple[int, int]) -> bool:
    """Native-rate FP16: sm_53 (Jetson TX1/Nano), sm_60, sm_62, and Volta (7.0) on; not sm_61 (GTX 10xx)."""
    return cc >= (5, 3) and cc not in ((6, 1), (5, 0), (5, 2))


def has_fast_int8(cc: tuple[int, int]) -> bool:
    """Fast INT8 (DP4A from sm_61, INT8 tensor cores from 7.2): none on Maxwell (Nano, 5.3)."""
    return cc >= (6, 1) and cc != (6, 2)


def int8_refusal(cc: tuple[int, int]) -> str | None:
    """Why INT8 makes no sense on this compute capability, or None where it is fast."""
    if has_fast_int8(cc):
        return None
    arch = "Maxwell" if cc[0] == 5 else "Pascal (sm_62, Jetson TX2)" if cc == (6, 2) else f"sm_{cc[0]}{cc[1]}"
    return (f"no fast INT8 on {arch} (compute capability {cc_str(cc)}): INT8 engines run slower than FP16 there "
            f"or are refused by TensorRT; build fp16 instead")


def platform_support(trt_version: Sequence[int], cc: tuple[int, int] | None,
                     builder_fp16: bool | None = None, builder_int8: bool | None = None) -> dict[str, Any]:
    """INT8/FP16 availability: from ``Builder.platform_has_fast_*`` before 10.5, else from the compute capability."""
    version = tuple(trt_version)
    if version < PLATFORM_QUERIES_DEPRECATED_FROM and builder_fp16 is not None and builder_int8 is not None:
        return {"fast_fp16": bool(builder_fp16), "fast_int8": bool(builder_int8),
                "source": "Builder.platform_has_fast_fp16/int8"}
    if cc is None:
        return {"fast_fp16": None, "fast_int8": None, "source": "unknown (no compute capability)"}
    return {"fast_fp16": has_fast_fp16(cc), "fast_int8": has_fast_int8(cc),
            "source": f"compute capability {cc_str(cc)} (platform_has_fast_* is deprecated from TensorRT 10.5)"}


# --- options, typed mode -----------------------------------------------------------------------

def resolve_options(target_options: Mapping[str, Any] | None = None,
                    overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the target's options, then per-build overrides; checked."""
    opts = dict(DEFAULT_OPTIONS)
    for source in (target_options or {}), (overrides or {}):
        for key, value in source.items():
            if key not in OPTIONS:
                continue  # other backends' or pipeline-level options travel in the same dicts
            opts[key] = value
    if opts["typed_mode"] not in TYPED_MODES:
        raise EdgeresError(f"TensorRT option typed_mode must be one of {', '.join(TYPED_MODES)}, "
                           f"got {opts['typed_mode']!r}")
    if int(opts["workspace_mib"]) < 1:
        raise EdgeresError(f"TensorRT option workspace_mib must be >= 1, got {opts['workspace_mib']}")
    if not 0 <= int(opts["builder_optimization_level"]) <= 5:
        raise EdgeresError("TensorRT option builder_optimization_level must be 0..5, "
                           f"got {opts['builder_optimization_level']}")
    if int(opts["dla_core"]) < -1:
        raise EdgeresError(f"TensorRT option dla_core must be -1 (GPU) or a DLA core index, got {opts['dla_core']}")
    parse_version(str(opts["min_tensorrt"]))
    return opts


@dataclass(frozen=True)
class TypedDecision:
    mode: str    # "strong" | "weak"
    reason: str


def choose_typed_mode(trt_version: Sequence[int], requested: str = "auto") -> TypedDecision:
    """Strongly typed from TensorRT 10.12 (weak typing deprecated there, removed in 11); weakly typed before."""
    version = tuple(trt_version)
    vtext = version_text(version)
    if requested not in TYPED_MODES:
        raise EdgeresError(f"typed mode must be one of {', '.join(TYPED_MODES)}, got {requested!r}")
    if requested == "strong":
        if version < STRONGLY_TYPED_FLAG_FROM:
            raise EdgeresError(f"TensorRT {vtext} cannot build strongly typed networks (needs 9.1 or newer); "
                               "use typed_mode = \"weak\" or \"auto\"")
        return TypedDecision("strong", "requested (typed_mode = strong)")
    if requested == "weak":
        if version >= PRECISION_FLAGS_REMOVED_IN:
            raise EdgeresError(f"TensorRT {vtext} builds only strongly typed networks (weak typing was removed in 11); "
                               "use typed_mode = \"strong\" or \"auto\"")
        return TypedDecision("weak", "requested (typed_mode = weak)")
    if version >= STRONGLY_TYPED_DEFAULT_FROM:
        return TypedDecision("strong", f"TensorRT {vtext} >= 10.12: Q/DQ and FP16 networks are built strongly "
                                       "typed, precision comes from the ONNX, no precision flags")
    return TypedDecision("weak", f"TensorRT {vtext} < 10.12: weakly typed with precision flags "
                                 "(INT8 plus FP16, so non-quantized layers fall back to FP16)")


# --- profiles ----------------------------------------------------------------------------------

def _dim_is_static(d: Any) -> bool:
    return isinstance(d, int) and not isinstance(d, bool) and d > 0


def profile_shapes(input_shape: Sequence[Any], batch: BatchProfile
                   ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
    """(min, opt, max) shapes for a dynamic-batch input, or None for a fully static input.

    ``input_shape`` is the ONNX/TensorRT input shape, batch first; a dynamic dim is -1,
    None, 0 or a symbolic name. Only the batch dim may be dynamic.
    """
    shape = list(input_shape)
    if not shape:
        raise EdgeresError("the model input has no dimensions; expected NCHW")
    for i, d in enumerate(shape[1:], start=1):
        if not _dim_is_static(d):
            raise EdgeresError(f"model input dimension {i} is dynamic ({d!r}); only the batch dimension may be: "
                               "export the ONNX with a fixed input size")
    if _dim_is_static(shape[0]):
        if not batch.min <= shape[0] <= batch.max:
            raise EdgeresError(f"the ONNX has a fixed batch of {shape[0]}, outside the batch profile {batch}; "
                               "export it with a dynamic batch (the default) or use a matching profile")
        return None
    rest = tuple(int(d) for d in shape[1:])
    return (batch.min, *rest), (batch.opt, *rest), (batch.max, *rest)


def shape_str(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


# --- the plan ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class EnginePlan:
    """Everything the TensorRT builder will be told, decided without TensorRT."""

    precision: str
    typed_mode: str                       # "strong" | "weak"
    typed_reason: str
    onnx_role: str                        # which ONNX to parse: "qdq" | "fp32" | "fp16"
    network_flags: tuple[str, ...]        # NetworkDefinitionCreationFlag names
    builder_flags: tuple[str, ...]        # BuilderFlag names to set
    cleared_flags: tuple[str, ...]        # BuilderFlag names to clear
    workspace_bytes: int
    optimization_level: int | None        # None: TensorRT too old for the setting
    dla_core: int | None                  # None: GPU only
    gpu_fallback: bool
    timing_cache: bool
    batch: BatchProfile = field(default_factory=BatchProfile)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["batch"] = str(self.batch)
        for key in ("network_flags", "builder_flags", "cleared_flags", "notes"):
            d[key] = list(d[key])
        return d


def plan_engine(precision: str, trt_version: Sequence[int], options: Mapping[str, Any] | None = None, *,
                batch: BatchProfile | None = None, num_dla_cores: int | None = None,
                have_fp16_onnx: bool = True, oldest: Sequence[int] = MIN_TENSORRT) -> EnginePlan:
    """Decide how to build ``precision`` with this TensorRT version and these (resolved) options.

    ``have_fp16_onnx``: an FP16 copy of the FP32 ONNX is (or can be made) available, which
    strongly typed FP16 needs. ``num_dla_cores``: what the device reports (None: unknown,
    e.g. when planning on a host for a kit's README). ``oldest``: the oldest TensorRT planned for
    (a kit's trtexec-only recipe for 8.2 plans below what edgeres itself runs on).
    """
    opts = resolve_options(options)
    version = tuple(trt_version)
    vtext = version_text(version)
    if precision not in ENGINE_PRECISIONS:
        raise EdgeresError(f"TensorRT builds {', '.join(ENGINE_PRECISIONS)} engines here, not {precision!r}")
    if version < tuple(oldest):
        raise EdgeresError(f"TensorRT {vtext} is too old: edgeres needs 8.5 or newer (JetPack 5.1+)")
    typed = choose_typed_mode(version, str(opts["typed_mode"]))
    mode, reason = typed.mode, typed.reason
    notes: list[str] = []
    builder_flags: list[str] = []
    cleared: list[str] = []
    if precision == "int8":
        onnx_role = "qdq"
        if mode == "weak":
            builder_flags += ["INT8", "FP16"]
            notes.append("explicit quantization from the Q/DQ ONNX (no calibrator); FP16 flag lets non-quantized "
                         "layers run in FP16")
        else:
            notes.append("explicit quantization from the Q/DQ ONNX, strongly typed: quantized layers run INT8, "
                         "layers outside Q/DQ pairs in the ONNX's float type (FP16 in the kit's opset-19 "
                         "model_int8_qdq_fp16.onnx, FP32 in the opset-17 one)")
    elif precision == "fp16":
        if mode == "strong" and not have_fp16_onnx:
            if version >= PRECISION_FLAGS_REMOVED_IN:
                raise EdgeresError(f"TensorRT {vtext} builds FP16 only from an FP16 ONNX, and none is available: "
                                   "rebuild the kit with edgeres (it writes one) or pass the FP16 ONNX")
            mode, reason = "weak", "no FP16 ONNX available: weakly typed with the (deprecated) FP16 flag"
        if mode == "strong":
            onnx_role = "fp16"
            notes.append("strongly typed from the FP16 ONNX (weights and activations FP16, I/O FP32)")
        else:
            onnx_role = "fp32"
            builder_flags.append("FP16")
    else:
        onnx_role = "fp32"
        cleared.append("TF32")
        notes.append("TF32 disabled so that fp32 means IEEE FP32 (the reference)")
    network_flags: list[str] = []
    if version < EXPLICIT_BATCH_UNTIL:
        network_flags.append("EXPLICIT_BATCH")
    if mode == "strong":
        network_flags.append("STRONGLY_TYPED")
    level: int | None = int(opts["builder_optimization_level"])
    if version < OPTIMIZATION_LEVEL_FROM:
        notes.append(f"builder optimization level not set: TensorRT {vtext} predates it (8.6)")
        level = None
    dla: int | None = int(opts["dla_core"])
    if dla is not None and dla < 0:
        dla = None
    if dla is not None:
        if precision == "fp32":
            notes.append("DLA runs FP16 and INT8 only: the fp32 engine runs on the GPU")
            dla = None
        elif num_dla_cores is not None and dla >= num_dla_cores:
            notes.append(f"DLA core {dla} requested but this device has {num_dla_cores} DLA core(s): GPU only")
            dla = None
    if dla is not None and bool(opts["gpu_fallback"]):
        builder_flags.append("GPU_FALLBACK")
    return EnginePlan(
        precision=precision, typed_mode=mode, typed_reason=reason, onnx_role=onnx_role,
        network_flags=tuple(network_flags), builder_flags=tuple(builder_flags), cleared_flags=tuple(cleared),
        workspace_bytes=int(opts["workspace_mib"]) << 20, optimization_level=level, dla_core=dla,
        gpu_fallback=bool(opts["gpu_fallback"]) and dla is not None, timing_cache=bool(opts["timing_cache"]),
        batch=batch or BatchProfile(), notes=tuple(notes),
    )


def check_target_precision(target_name: str, target_precisions: Sequence[str], device: Mapping[str, Any],
                           precision: str) -> None:
    """Refuse a precision the target cannot run, with the target's reason (e.g. INT8 on Jetson Nano)."""
    if precision in target_precisions:
        return
    reason = device.get(f"{precision}_refused")
    if reason is None and precision == "int8" and "compute_capability" in device:
        cc_value = device["compute_capability"]
        if cc_value != "device":
            reason = int8_refusal(parse_cc(cc_value))
    why = f": {reason}" if reason else ""
    raise UsageError(f"target {target_name} does not support {precision}{why}. "
                       f"It supports: {', '.join(target_precisions)}")


# --- compatibility of a built engine with this machine ------------------------------------------

def check_engine_compat(metadata: Mapping[str, Any], trt_version: str, cc: tuple[int, int] | None,
                        gpu_name: str | None = None, engine: str = "engine") -> None:
    """Refuse to load an engine built for another GPU architecture or TensorRT version."""
    built_version = metadata.get("tensorrt_version")
    built_cc = metadata.get("compute_capability")
    built_gpu = metadata.get("gpu") or "unknown GPU"
    if not built_version or not built_cc:
        raise EdgeresError(f"{engine} has no TensorRT version or compute capability in its sidecar; "
                           "rebuild it on this device with edgeres")
    if parse_version(str(built_version)) != parse_version(trt_version):
        raise EdgeresError(f"{engine} was built with TensorRT {built_version} but this machine has TensorRT "
                           f"{trt_version}: TensorRT engines only load with the exact version that built them. "
                           "Rebuild it on this device (edgeres kit build KIT, or edgeres build)")
    if cc is not None and parse_cc(built_cc) != cc:
        here = f"{gpu_name} " if gpu_name else ""
        raise EdgeresError(f"{engine} was built for compute capability {built_cc} ({built_gpu}) but this GPU "
                           f"{here}is compute capability {cc_str(cc)}: TensorRT engines are not portable across GPU "
                           "architectures. Rebuild it on this device (edgeres kit build KIT, or edgeres build)")


# --- trtexec -----------------------------------------------------------------------------------

def trtexec_command(plan: EnginePlan, onnx: str, engine: str, input_name: str,
                    shapes: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None,
                    timing_cache: str | None = "timing.cache", stronglytyped_flag: bool = True,
                    workspace_flag: str = "--memPoolSize") -> str:
    """The trtexec line that builds the same engine as ``plan`` (``--stronglyTyped`` only where asked:
    TensorRT 11's trtexec is always strongly typed; ``--workspace=N`` before TensorRT 8.4)."""
    args = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}"]
    if "STRONGLY_TYPED" in plan.network_flags and stronglytyped_flag:
        args.append("--stronglyTyped")
    if "INT8" in plan.builder_flags:
        args.append("--int8")
    if "FP16" in plan.builder_flags:
        args.append("--fp16")
    if "TF32" in plan.cleared_flags:
        args.append("--noTF32")
    if shapes is not None:
        for flag, shape in zip(("--minShapes", "--optShapes", "--maxShapes"), shapes):
            args.append(f"{flag}={input_name}:{shape_str(shape)}")
    mib = plan.workspace_bytes >> 20
    args.append(f"--workspace={mib}" if workspace_flag == "--workspace" else f"--memPoolSize=workspace:{mib}")
    if plan.optimization_level is not None:
        args.append(f"--builderOptimizationLevel={plan.optimization_level}")
    if plan.timing_cache and timing_cache:
        args.append(f"--timingCacheFile={timing_cache}")
    if plan.dla_core is not None:
        args.append(f"--useDLACore={plan.dla_core}")
        if plan.gpu_fallback:
            args.append("--allowGPUFallback")
    return " ".join(shlex.quote(a) if any(c in a for c in " ;&|$") else a for a in args)
