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
from edgeres.backends.tensorrt_recipes import ONNX_FILES
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
    "fp16": Tolerance(0.99, 0.9995),
    "int8": Tolerance(0.5, 0.99),
    "int8_fp16": Tolerance(0.5, 0.99),
}
# Which recipes parse each ONNX key (the lint checks opsets against them).
PARSED_BY = {"int8": ("trt8.5-10.11",), "int8_fp16": ("trt10.12-10.x", "trt11")}


def write_kit_onnx(root: Path, fp32_onnx: Path, qdq_onnx: Path | None, fp16_onnx: Any, precisions: Sequence[str],
                   sample: np.ndarray) -> dict[str, Any]:
    """Copy or convert every ONNX the kit's recipes need into ``root``: {"files": {key: path}, "conversions"}.

    ``fp16_onnx``: True to convert here, a path to ship that file, False for none.
    """
    files: dict[str, str] = {"fp32": ONNX_FILES["fp32"]}
    made: dict[str, Any] = {}
    shutil.copyfile(fp32_onnx, root / ONNX_FILES["fp32"])
    if "int8" in precisions and qdq_onnx is not None:
        shutil.copyfile(qdq_onnx, root / ONNX_FILES["int8"])
        made["int8_fp16"] = qdq_fp16_copy(qdq_onnx, root / ONNX_FILES["int8_fp16"], sample).to_dict()
        files.update(int8=ONNX_FILES["int8"], int8_fp16=ONNX_FILES["int8_fp16"])
    if "fp16" in precisions and fp16_onnx is not False:
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


__all__ = ["PARSED_BY", "TOLERANCES", "Tolerance", "check_onnx", "lint_files", "proof_summary", "prove_kit_files", "run_onnx",
           "write_kit_onnx"]
