"""Build recipes per TensorRT version, and the engines a device builds (GPU rows, DLA rows).

A device kit is written on a host that does not know which TensorRT the device has, so it
carries one recipe per TensorRT generation its device can have (the target's ``min_tensorrt``
option and ``[device] tensorrt_max``) and the device picks by the version it finds:

- ``trt8.2-8.4`` (JetPack 4.6: 8.2, the last for Jetson Nano): trtexec lines only (edgeres
  itself needs 8.5 on the device). Weakly typed, FP32 and FP16 only, ``--workspace=N`` (no
  ``--memPoolSize`` before 8.4, no ``--builderOptimizationLevel`` before 8.6), from an
  opset-13 copy of the FP32 ONNX: TensorRT 8.2's ONNX parser takes opsets 7 - 13.
- ``trt8.5-10.11`` (JetPack 5.1: 8.5; JetPack 6.0: 8.6; JetPack 6.1/6.2: 10.3): weakly typed.
  INT8 from the opset-17 Q/DQ ONNX with the INT8 and FP16 flags (float layers in FP16), FP16
  from the FP32 ONNX with the FP16 flag.
- ``trt10.12-10.x``: strongly typed (``--stronglyTyped``), no precision flags. INT8 from the
  opset-19 Q/DQ ONNX whose float layers are FP16, FP16 from the FP16 ONNX.
- ``trt11`` (JetPack 7.2.2+: 11.4 on AGX Orin and Thor): the same ONNX files; precision flags
  no longer exist and strong typing is always on, so neither appears in its lines.

Which flags each trtexec accepts is data here too (``trtexec_accepts``), so every line a kit
prints is checked against the version it names. Sources: NVIDIA's "Migrating trtexec Usage
from TensorRT 8.x to 10.x" (``--workspace`` removed in 10, use ``--memPoolSize``) and
"... 10.x to 11.x" (``--fp16 --int8 --bf16 --fp8 --int4 --best --calib`` removed;
``--stronglyTyped`` no longer needed), the trtexec README (DLA: ``--useDLACore``,
``--allowGPUFallback``; layer profile: ``--dumpProfile --separateProfileRun``).

DLA: the GPU is the default engine for every precision. With ``dla_variants`` a device that
has DLA cores also builds FP16 and INT8 on DLA core 0 as rows of their own (``int8 @ dla0``);
``dla_core = N`` instead moves FP16/INT8 to DLA core N only (GPU kept free for the app).
Not every TensorRT drives the DLA: NVIDIA's DLA pages say 10.7 was the last 10.x with DLA
and 11.0 - 11.4.0 have none on JetPack; 11.4.1 brings it back on AGX Orin. Those versions
get GPU rows only (``dla_supported``). The DLA takes no dynamic dimensions, so DLA engines
are built for the batch profile's opt batch alone (``variant_batch``).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeres.artifact import BatchProfile
from edgeres.backends.tensorrt_plan import EnginePlan, plan_engine, resolve_options, version_text
from edgeres.errors import EdgeresError

if TYPE_CHECKING:
    import tensorrt as trt_t

# The kit's ONNX files, by key.
ONNX_FILES = {"fp32": "onnx/model_fp32.onnx", "fp32_opset13": "onnx/model_fp32_opset13.onnx",
              "fp16": "onnx/model_fp16.onnx",
              "int8": "onnx/model_int8_qdq.onnx", "int8_fp16": "onnx/model_int8_qdq_fp16.onnx"}
DLA_PRECISIONS = ("fp16", "int8")
THROUGHPUT_STREAMS = 2   # execution contexts kept busy at once, as the kit's own throughput figure


@dataclass(frozen=True)
class Recipe:
    name: str
    label: str
    first: tuple[int, ...]          # first TensorRT version it covers
    below: tuple[int, ...] | None   # first version it no longer covers
    plan_version: tuple[int, ...]   # the version its plans are made for
    typed_mode: str
    max_opset: int                  # newest ONNX opset the parser of its oldest version takes
    dla: str                        # where its versions drive the DLA ("" where none does)
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8")   # what its lines build

    def covers(self, version: Sequence[int]) -> bool:
        v = tuple(version)
        return v >= self.first and (self.below is None or v < self.below)

    def overlaps(self, oldest: Sequence[int], newest: Sequence[int] | None) -> bool:
        """Whether any TensorRT from ``oldest`` to ``newest`` (None: no limit) falls in this recipe."""
        return (self.below is None or tuple(oldest) < self.below) and (newest is None or tuple(newest) >= self.first)

    @property
    def span(self) -> str:
        return span_of(self.label)

    @property
    def fp32_key(self) -> str:
        """The kit's FP32 ONNX this recipe parses: the opset-13 copy where its parser stops at 13."""
        return "fp32_opset13" if self.max_opset < 17 else "fp32"

    @property
    def workspace_flag(self) -> str:
        """--memPoolSize=workspace:N from TensorRT 8.4; --workspace=N before (removed in 10)."""
        return "--workspace" if self.plan_version < (8, 4) else "--memPoolSize"

    @property
    def streams_flag(self) -> str:
        """trtexec's concurrent-contexts option: --streams up to 10.x (a deprecated alias from 10.0 on),
        --infStreams from 10.0."""
        return "--infStreams" if self.first >= (10, 0) else "--streams"

    @property
    def stronglytyped_flag(self) -> bool:
        """trtexec needs --stronglyTyped (10.x); in 11.x strong typing is always on."""
        return self.typed_mode == "strong" and self.plan_version < (11, 0)


def span_of(label: str) -> str:
    """A recipe's versions without its JetPack note: 'TensorRT 8.5 - 10.11 (JetPack ...)' -> 'TensorRT 8.5 - 10.11'."""
    return label.split(" (")[0]


RECIPES = (
    Recipe("trt8.2-8.4", "TensorRT 8.2 - 8.4 (JetPack 4.6: 8.2, the last for Jetson Nano)", (8, 2), (8, 5), (8, 2),
           "weak", 13, "", ("fp32", "fp16")),
    Recipe("trt8.5-10.11", "TensorRT 8.5 - 10.11 (JetPack 5.1: 8.5; JetPack 6.0: 8.6; JetPack 6.1/6.2: 10.3)",
           (8, 5), (10, 12), (8, 5), "weak", 17, "DLA rows: TensorRT 8.5 - 10.7 (JetPack 5 and 6)"),
    Recipe("trt10.12-10.x", "TensorRT 10.12 - 10.x", (10, 12), (11, 0), (10, 12), "strong", 20, ""),
    Recipe("trt11", "TensorRT 11.x (JetPack 7.2.2+: 11.4 on AGX Orin and Thor)", (11, 0), None, (11, 0), "strong",
           24, "DLA rows: TensorRT 11.4.1 and newer on AGX Orin (11.0 - 11.4.0 have no DLA on JetPack)"),
)


def dla_supported(version: Sequence[int]) -> bool:
    """Whether TensorRT ``version`` drives the DLA on Jetson: up to 10.7, and again from 11.4.1."""
    v = tuple(version)
    return v < (10, 8) or v >= (11, 4, 1)


def recipe_for(version: Sequence[int]) -> Recipe:
    for recipe in RECIPES:
        if recipe.covers(version):
            return recipe
    raise EdgeresError(f"TensorRT {version_text(version)} is older than any recipe (8.2 is the oldest)")


# --- trtexec flags by version ------------------------------------------------------------------

_ALWAYS = frozenset({
    "--onnx", "--saveEngine", "--loadEngine", "--minShapes", "--optShapes", "--maxShapes", "--shapes",
    "--timingCacheFile", "--useDLACore", "--allowGPUFallback", "--noTF32", "--dumpProfile",
    "--separateProfileRun", "--iterations", "--warmUp", "--duration", "--avgRuns", "--useSpinWait",
    "--noDataTransfers", "--useCudaGraph", "--verbose", "--exportProfile", "--exportLayerInfo",
    "--profilingVerbosity", "--dumpLayerInfo",
})
_PRECISION_FLAGS = frozenset({"--fp16", "--int8", "--best", "--calib"})   # removed in 11.0


def trtexec_accepts(version: Sequence[int]) -> frozenset[str]:
    """The trtexec options edgeres may print for TensorRT ``version``."""
    v = tuple(version)
    flags = set(_ALWAYS)
    if v < (11, 0):
        flags |= _PRECISION_FLAGS
    if v < (10, 0):
        flags.add("--workspace")
    if v >= (8, 4):
        flags.add("--memPoolSize")
    if v >= (8, 6):
        flags.add("--builderOptimizationLevel")
    if v < (11, 0):
        flags.add("--streams")
    if v >= (10, 0):
        flags.add("--infStreams")
    if (9, 1) <= v < (11, 0):
        flags.add("--stronglyTyped")
    return frozenset(flags)


def unknown_flags(line: str, version: Sequence[int]) -> list[str]:
    """Options in the trtexec ``line`` that TensorRT ``version``'s trtexec does not take."""
    accepted = trtexec_accepts(version)
    words = shlex.split(line)
    if not words or words[0] != "trtexec":
        raise EdgeresError(f"not a trtexec line: {line!r}")
    return [w.split("=")[0] for w in words[1:] if w.split("=")[0] not in accepted]


# --- engines to build ----------------------------------------------------------------------------

@dataclass(frozen=True)
class EngineVariant:
    """One engine, one report row: a precision on the GPU or on a DLA core."""

    precision: str
    dla_core: int | None = None

    @property
    def label(self) -> str:
        return self.precision if self.dla_core is None else f"{self.precision} @ dla{self.dla_core}"

    @property
    def engine_file(self) -> str:
        suffix = "" if self.dla_core is None else f"_dla{self.dla_core}"
        return f"model_{self.precision}{suffix}.engine"

    @property
    def device(self) -> str:
        return "gpu" if self.dla_core is None else f"dla{self.dla_core}"


def engine_variants(precisions: Sequence[str], options: Mapping[str, Any], num_dla_cores: int | None
                    ) -> tuple[list[EngineVariant], list[str]]:
    """The engines to build for ``precisions`` and the notes that explain what was left out.

    ``num_dla_cores``: what the device reports (None on a host: the target's declared count).
    """
    opts = resolve_options(options)
    dla_only = int(opts["dla_core"])
    cores = int(num_dla_cores or 0)
    variants: list[EngineVariant] = []
    notes: list[str] = []
    for p in precisions:
        if dla_only >= 0 and p in DLA_PRECISIONS:
            if dla_only < cores:
                variants.append(EngineVariant(p, dla_only))
                continue
            notes.append(f"dla_core = {dla_only} asked for {p} on DLA, but this device has {cores} DLA core(s): "
                         f"{p} runs on the GPU")
        variants.append(EngineVariant(p))
        if dla_only < 0 and bool(opts["dla_variants"]) and p in DLA_PRECISIONS:
            if cores > 0:
                variants.append(EngineVariant(p, 0))
            elif num_dla_cores is not None and not any("no DLA" in n for n in notes):
                notes.append("this device has no DLA cores (e.g. Orin Nano): GPU rows only")
    return variants, notes


def variant_batch(variant: EngineVariant, batch: BatchProfile) -> BatchProfile:
    """The DLA takes no dynamic dimensions (min = opt = max, NVIDIA's DLA layer restrictions): DLA rows
    are built for the profile's opt batch alone; GPU rows keep the whole profile."""
    return batch if variant.dla_core is None else BatchProfile(batch.opt, batch.opt, batch.opt)


def plan_variant(variant: EngineVariant, recipe: Recipe, options: Mapping[str, Any], batch: BatchProfile,
                 num_dla_cores: int | None, have_fp16_onnx: bool) -> EnginePlan:
    """The EnginePlan of one variant for ``recipe``'s TensorRT (GPU rows never get a DLA core)."""
    opts = {**dict(options), "dla_core": -1 if variant.dla_core is None else variant.dla_core}
    return plan_engine(variant.precision, recipe.plan_version, opts, batch=variant_batch(variant, batch),
                       num_dla_cores=num_dla_cores, have_fp16_onnx=have_fp16_onnx, oldest=recipe.first)


def dla_fallback_layers(network: trt_t.INetworkDefinition, config: trt_t.IBuilderConfig) -> list[str]:
    """Layers of ``network`` the DLA cannot run (they fall back to the GPU, or fail the build without fallback)."""
    return [network.get_layer(i).name for i in range(network.num_layers)
            if not config.can_run_on_DLA(network.get_layer(i))]


def onnx_key(plan: EnginePlan, available: Sequence[str], recipe: Recipe) -> str:
    """Which of the kit's ONNX files a plan builds from: strongly typed INT8 takes the FP16 Q/DQ form,
    a recipe whose parser stops below opset 17 the opset-13 FP32 copy."""
    if plan.onnx_role == "qdq":
        return "int8_fp16" if plan.typed_mode == "strong" and "int8_fp16" in available else "int8"
    return recipe.fp32_key if plan.onnx_role == "fp32" else plan.onnx_role


def execution_precision(plan: EnginePlan, key: str) -> str:
    """What the engine's layers run in: 'int8+fp16' where float layers are FP16."""
    if plan.precision != "int8":
        return plan.precision
    fp16_floats = "FP16" in plan.builder_flags or key == "int8_fp16"
    return "int8+fp16" if fp16_floats else "int8+fp32"


__all__ = [
    "DLA_PRECISIONS",
    "ONNX_FILES",
    "RECIPES",
    "THROUGHPUT_STREAMS",
    "EngineVariant",
    "Recipe",
    "dla_fallback_layers",
    "dla_supported",
    "engine_variants",
    "execution_precision",
    "onnx_key",
    "plan_variant",
    "recipe_for",
    "span_of",
    "trtexec_accepts",
    "unknown_flags",
    "variant_batch",
]
