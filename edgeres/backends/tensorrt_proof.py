"""Write a kit's ONNX files and prove them here, before they leave the host.

No TensorRT here, but every ONNX a kit ships can still be run: ONNX Runtime executes the
FP32, FP16 and both INT8 forms on the kit's validation slice, and each must match the FP32
reference logits within its stated tolerance. A broken conversion (a clipped weight, a Q/DQ
with the wrong axis, an FP16 overflow) then stops the kit here, with the numbers, instead of
reaching a device. The Q/DQ files are also linted against TensorRT's explicit-quantization
rules for the TensorRT versions whose recipe builds from them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.backends.tensorrt_fp16 import fp16_copy, qdq_fp16_copy
from edgeres.backends.tensorrt_lint import lint_qdq, recipe_limits
from edgeres.backends.tensorrt_plan import STRONGLY_TYPED_FLAG_FROM
from edgeres.backends.tensorrt_recipes import ONNX_FILES, RECIPES, Recipe
from edgeres.errors import EdgeresError
from edgeres.optional import require, version_of
from edgeres.validate.metrics import compare


@dataclass(frozen=True)
class Tolerance:
    agreement: float   # top-1 agreement with the FP32 reference, at least
    cosine: float      # mean cosine similarity of the logits, at least

    def to_dict(self) -> dict[str, float]:
        return {"min_agreement": self.agreement, "min_cosine": self.cosine}


# What each form may differ from the FP32 reference on the slice (ONNX Runtime, CPU). The INT8
# forms are held to what catches a broken graph (a wrong scale axis or a clipped weight drops
# the cosine far below 0.99 and the agreement toward chance), not to the accuracy budget: what
# INT8 may lose is decided by the budget on the device's own rows, and a random-weight model's
# INT8 legitimately changes many top-1s whose logits are nearly tied.
TOLERANCES = {
    "fp32": Tolerance(0.999, 0.99999),
    "fp32_opset13": Tolerance(0.999, 0.99999),   # the same graph, older operator versions
    "fp16": Tolerance(0.99, 0.9995),
    "int8": Tolerance(0.5, 0.99),
    "int8_fp16": Tolerance(0.5, 0.99),
}
# Which recipes parse each ONNX key (the lint checks opsets against them).
PARSED_BY = {"int8": ("trt8.5-10.11",), "int8_fp16": ("trt10.12-10.x", "trt11")}


# Operators whose versions between opset 13 and 17 only widened the types they take (bfloat16, more
# integer types: ONNX's Changelog.md), so a float32 node means the same at 13. onnx's version_converter
# has no down-adapters for them (it stops at "No Adapter From Version $14 for Relu").
_TYPES_ONLY = {("Relu", 14), ("Add", 14), ("Sub", 14), ("Mul", 14), ("Div", 14), ("Identity", 14),
               ("Identity", 16), ("BatchNormalization", 15), ("Pow", 15)}


def _relabel(model: Any, opset: int, before: int) -> Any | None:
    """``model`` with its opset lowered where every operator change since ``opset`` is a type-only one
    (``_TYPES_ONLY``) and every tensor is float32; None otherwise."""
    from onnx import TensorProto, defs, helper

    changes = {(n.op_type, defs.get_schema(n.op_type, v).since_version) for n in model.graph.node
               for v in range(opset + 1, before + 1)}
    changes = {(op, v) for op, v in changes if v > opset}
    floats = all(i.data_type == TensorProto.FLOAT for i in model.graph.initializer)
    if not floats or not changes <= _TYPES_ONLY:
        return None
    out = type(model)()
    out.CopyFrom(model)
    del out.opset_import[:]
    out.opset_import.extend([helper.make_opsetid("", opset)])
    return out


def opset_copy(src: Path, dst: Path, opset: int) -> dict[str, Any]:
    """``src`` for an older ONNX parser (TensorRT 8.2 parses opsets up to 13): onnx's version_converter,
    else, where every operator change since ``opset`` only widened types, the same graph at ``opset``;
    checked by onnx.checker with full shape inference against the older schemas either way."""
    onnx = require("onnx", "writing the kit's opset-13 ONNX")
    from onnx import version_converter

    model = onnx.load(str(src))
    before = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    how = f"onnx.version_converter {version_of('onnx')}"
    converted: Any
    try:
        converted = version_converter.convert_version(model, opset)
    except RuntimeError as exc:   # the converter's C++ assertion for an op it has no adapter for
        converted = _relabel(model, opset, before)
        if converted is None:
            raise EdgeresError(f"{src.name} cannot be converted from opset {before} to {opset} for the older "
                               f"TensorRT parser: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                               ) from None
        how = f"opset lowered: the operators' changes since {opset} only widened their types"
    try:
        onnx.checker.check_model(converted, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise EdgeresError(f"{src.name} at opset {opset} fails onnx.checker: {str(exc).splitlines()[0]}") from None
    onnx.save(converted, str(dst))
    return {"from_opset": before, "to_opset": opset, "how": how}


def write_kit_onnx(root: Path, fp32_onnx: Path, qdq_onnx: Path | None, fp16_onnx: Any, precisions: Sequence[str],
                   sample: np.ndarray, recipes: Sequence[Recipe] = RECIPES) -> dict[str, Any]:
    """Copy or convert every ONNX the kit's ``recipes`` need into ``root``: {"files": {key: path}, "conversions"}.

    ``fp16_onnx``: True to convert here, a path to ship that file, False for none. The FP16 forms are
    written only where a recipe may build strongly typed (TensorRT 9.1+), the opset-13 FP32 copy only
    where a recipe's parser needs it.
    """
    files: dict[str, str] = {"fp32": ONNX_FILES["fp32"]}
    made: dict[str, Any] = {}
    strong = any(r.below is None or r.below > STRONGLY_TYPED_FLAG_FROM for r in recipes)
    shutil.copyfile(fp32_onnx, root / ONNX_FILES["fp32"])
    if any(r.fp32_key == "fp32_opset13" for r in recipes):
        made["fp32_opset13"] = opset_copy(fp32_onnx, root / ONNX_FILES["fp32_opset13"], 13)
        files["fp32_opset13"] = ONNX_FILES["fp32_opset13"]
    if "int8" in precisions and qdq_onnx is not None:
        shutil.copyfile(qdq_onnx, root / ONNX_FILES["int8"])
        files["int8"] = ONNX_FILES["int8"]
        if strong:
            made["int8_fp16"] = qdq_fp16_copy(qdq_onnx, root / ONNX_FILES["int8_fp16"], sample).to_dict()
            files["int8_fp16"] = ONNX_FILES["int8_fp16"]
    if "fp16" in precisions and fp16_onnx is not False and strong:
        if fp16_onnx is True:
            made["fp16"] = fp16_copy(fp32_onnx, root / ONNX_FILES["fp16"], sample).to_dict()
        else:
            shutil.copyfile(Path(fp16_onnx), root / ONNX_FILES["fp16"])
        files["fp16"] = ONNX_FILES["fp16"]
    return {"files": files, "conversions": made}


def run_onnx(path: str | os.PathLike[str], inputs: np.ndarray, batch: int = 64) -> np.ndarray:
    """Logits of ``path`` on ``inputs`` with ONNX Runtime's CPU provider, running the graph as written.

    Graph optimizations are off: the proof is about the file, not about what ONNX Runtime rewrites
    it into. (ONNX Runtime's WeightBiasQuantization pass turns an FP16 Q/DQ graph's biases into
    INT32 with the scale input x weight scale computed in FP16, which underflows for small weight
    scales: the demo ResNet-50's correct opset-19 form read cosine 0.86 with it, 0.9988 without.)
    """
    ort = require("onnxruntime", "checking the kit's ONNX files")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    parts = [session.run(None, {name: np.ascontiguousarray(inputs[i:i + batch])})[0]
             for i in range(0, len(inputs), batch)]
    return np.concatenate(parts).astype(np.float32)


def check_onnx(key: str, path: Path, inputs: np.ndarray, labels: np.ndarray | None, reference: np.ndarray
               ) -> dict[str, Any]:
    """Run one ONNX on the slice; its accuracy, fidelity and whether it is within tolerance."""
    tol = TOLERANCES[key]
    acc = compare(run_onnx(path, inputs), labels, reference)
    agreement = acc.agreement if acc.agreement is not None else 0.0
    cosine = acc.cosine if acc.cosine is not None else 0.0
    ok = agreement >= tol.agreement and cosine >= tol.cosine
    return {"runtime": f"onnxruntime {version_of('onnxruntime')} (CPU, graph as written)", "n": acc.n, "top1": acc.top1,
            "reference_top1": acc.reference_top1, "agreement": agreement, "cosine": cosine,
            "max_abs_diff": acc.max_abs_diff, "tolerance": tol.to_dict(), "ok": ok}


def lint_files(root: Path, files: Mapping[str, str]) -> dict[str, Any]:
    """Lint every Q/DQ ONNX of the kit for the recipes that build from it."""
    out = {}
    for key, rel in files.items():
        if key not in PARSED_BY:
            continue
        violations = lint_qdq(root / rel, recipe_limits(PARSED_BY[key]))
        out[rel] = {"recipes": list(PARSED_BY[key]), "violations": [v.to_dict() for v in violations],
                    "lines": [v.line(rel) for v in violations], "ok": not violations}
    return out


def prove_kit_files(root: Path, files: dict[str, str], inputs: np.ndarray, labels: np.ndarray | None,
                    reference: np.ndarray, keys: Sequence[str] | None = None) -> dict[str, Any]:
    """{"onnx": per-file checks, "lint": per-Q/DQ-file lint, "dropped"}; raises with every failure, one line each.

    The strongly typed INT8 form (FP16 float layers) is an optimisation of the INT8 ONNX: when it
    does not match the reference, it is removed from ``files`` (the strongly typed recipes then
    build from the INT8 ONNX with FP32 float layers, slower but right) and "dropped" says why.
    """
    checks = {rel: {"key": key, **check_onnx(key, root / rel, inputs, labels, reference)}
              for key, rel in files.items() if keys is None or key in keys}
    dropped: dict[str, str] = {}
    for rel, c in list(checks.items()):
        if c["key"] == "int8_fp16" and not c["ok"] and checks.get(files.get("int8", ""), {}).get("ok"):
            dropped[rel] = (f"agreement {c['agreement']:.4f} / cosine {c['cosine']:.5f} with the FP32 reference, below "
                            f"{c['tolerance']['min_agreement']} / {c['tolerance']['min_cosine']}: not shipped; strongly "
                            "typed TensorRT builds from the INT8 ONNX with FP32 float layers instead")
            del files[c["key"]]
            (root / rel).unlink()
    lint = lint_files(root, files)
    problems = [f"{rel}: agreement {c['agreement']:.4f} / cosine {c['cosine']:.5f} with the FP32 reference on "
                f"{c['n']} inputs, below the tolerance {c['tolerance']['min_agreement']} / "
                f"{c['tolerance']['min_cosine']}" for rel, c in checks.items() if not c["ok"] and rel not in dropped]
    problems += [line for entry in lint.values() for line in entry["lines"]]
    if problems:
        raise EdgeresError("the kit's ONNX files are not fit for TensorRT; nothing was written:\n  "
                           + "\n  ".join(problems))
    return {"onnx": checks, "lint": lint, "dropped": dropped}


def proof_summary(proof: Mapping[str, Any]) -> str:
    """One line for ``edgeres kit show``: what was checked on the host when the kit was written."""
    checks = proof.get("onnx", {})
    if not checks:
        return "no host checks recorded (a kit from an older edgeres)"
    worst = min(checks.items(), key=lambda kv: kv[1]["agreement"])
    lint = proof.get("lint", {})
    return (f"checked when written: {len(checks)} ONNX on {next(iter(checks.values()))['n']} inputs "
            f"({next(iter(checks.values()))['runtime']}), lowest agreement with FP32 {100 * worst[1]['agreement']:.2f}% "
            f"({worst[0]}); Q/DQ lint: {sum(not e['ok'] for e in lint.values())} of {len(lint)} files with violations"
            + "".join(f"; not shipped: {rel} ({why})" for rel, why in (proof.get("dropped") or {}).items()))


__all__ = ["PARSED_BY", "TOLERANCES", "Tolerance", "check_onnx", "lint_files", "opset_copy", "proof_summary", "prove_kit_files", "run_onnx",
           "write_kit_onnx"]
