"""Torch-free helpers for ONNX files: load with clear errors, the input spec, quantized or not, metadata.

Only ``onnx`` is needed here (never torch), so export, quantization, the backends and the
bundle tooling share them on a machine without PyTorch.
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeres import schemas
from edgeres.artifact import Artifact
from edgeres.errors import EdgeresError
from edgeres.fileio import read_json

if TYPE_CHECKING:
    import onnx

# The ONNX metadata_props key that holds edgeres's whole metadata as JSON; a few
# fields are also written under their own names so `netron` and friends show them.
METADATA_KEY = "edgeres"
PLAIN_KEYS = ("depth", "num_classes", "input_size", "opset", "exporter", "checkpoint_sha256", "precision")

# Operators that only a quantized graph holds: Q/DQ pairs or integer kernels.
QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd", "QGemm",
    "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "QLinearGlobalAveragePool",
})

_ELEM_TYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16", 11: "float64",
               16: "bfloat16"}


def _onnx() -> Any:
    from edgeres.optional import require

    return require("onnx", "reading ONNX files")


def load_onnx(path: str | os.PathLike[str], *, load_external_data: bool = True) -> onnx.ModelProto:
    """Read an ONNX file, or raise one clear ``EdgeresError`` (missing, empty, corrupt, truncated)."""
    onnx = _onnx()
    path = Path(path)
    if path.is_dir():
        raise EdgeresError(f"{path} is a directory, not an ONNX file (name the .onnx file inside it)")
    if not path.is_file():
        raise EdgeresError(f"ONNX file {path} does not exist")
    if path.stat().st_size == 0:
        raise EdgeresError(f"ONNX file {path} is empty (an interrupted write?); export it again")
    try:
        model = onnx.load(str(path), load_external_data=load_external_data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError, ValueError, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EdgeresError(f"{path} is not a readable ONNX model (corrupt or truncated file: {first}); "
                           "export it again") from None
    if not model.graph.node or not model.graph.input or not model.graph.output:
        raise EdgeresError(f"{path} is not a usable ONNX model (no graph, inputs or outputs: corrupt or truncated "
                           "file?); export it again")
    return model


def check_onnx(model_or_path: onnx.ModelProto | str | os.PathLike[str], *, full_check: bool = True) -> None:
    """``onnx.checker`` (with shape inference when ``full_check``), as an ``EdgeresError``."""
    onnx = _onnx()
    target = str(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else model_or_path
    try:
        onnx.checker.check_model(target, full_check=full_check)
    except Exception as exc:  # noqa: BLE001 - ValidationError, InferenceError
        raise EdgeresError(f"the ONNX model fails onnx.checker: {str(exc).splitlines()[0]}") from None


def as_model(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> onnx.ModelProto:
    if isinstance(model_or_path, (str, os.PathLike)):
        return load_onnx(model_or_path, load_external_data=False)
    return model_or_path


def _value_spec(value: Any) -> dict[str, Any]:
    tensor = value.type.tensor_type
    shape: list[int | str] = []
    for i, d in enumerate(tensor.shape.dim):
        if d.HasField("dim_value"):
            shape.append(int(d.dim_value))
        else:
            shape.append(d.dim_param or f"dim{i}")
    return {"name": value.name, "shape": shape, "dtype": _ELEM_TYPES.get(tensor.elem_type, str(tensor.elem_type))}


def graph_inputs(model: onnx.ModelProto) -> list[Any]:
    """The real inputs (old IRs also list initializers as inputs)."""
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def onnx_input_spec(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, Any]:
    """``{"name", "shape", "dtype"}`` of the single input; a symbolic dim is its name (e.g. "batch")."""
    model = as_model(model_or_path)
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise EdgeresError(f"expected an ONNX model with one input (an image batch), found {len(inputs)}: "
                           f"{[i.name for i in inputs]}")
    return _value_spec(inputs[0])


def onnx_output_spec(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, Any]:
    """``{"name", "shape", "dtype"}`` of the first output (the logits)."""
    model = as_model(model_or_path)
    return _value_spec(model.graph.output[0])


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(collections.Counter(n.op_type for n in model.graph.node).most_common())


def quantized_ops(model: onnx.ModelProto) -> list[str]:
    """The quantization operators the graph holds, sorted ([] for a float graph)."""
    return sorted({n.op_type for n in model.graph.node if n.op_type in QUANTIZED_OPS})


def is_quantized(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> bool:
    """True when the graph carries quantization (Q/DQ nodes or integer kernels)."""
    return bool(quantized_ops(as_model(model_or_path)))


def graph_precision(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> str:
    """"int8" when the graph holds quantization ops (Q/DQ or integer kernels), "fp16" for FP16
    weights, else "fp32"."""
    model = as_model(model_or_path)
    if quantized_ops(model):
        return "int8"
    if any(i.data_type == 10 for i in model.graph.initializer):
        return "fp16"
    return "fp32"


def opset_of(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 0


# --- metadata -----------------------------------------------------------------------------------

def set_metadata(model: onnx.ModelProto, metadata: dict[str, Any]) -> None:
    """Write ``metadata`` into ``metadata_props``: the whole dict as JSON under "edgeres",
    plus the plain fields in ``PLAIN_KEYS`` (as strings) for other tools to show."""
    props = {p.key: p.value for p in model.metadata_props}
    props[METADATA_KEY] = json.dumps(metadata, sort_keys=True, default=str)
    for key in PLAIN_KEYS:
        if metadata.get(key) is not None:
            props[key] = str(metadata[key])
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def source_metadata(path: str | os.PathLike[str], model: onnx.ModelProto | None = None) -> dict[str, Any]:
    """What edgeres recorded about an ONNX it wrote: the sidecar JSON beside it when there is a
    readable one, else the copy embedded in the file ({} for an ONNX edgeres did not write)."""
    sidecar = Artifact.sidecar_of(path)
    if sidecar.is_file():
        try:
            value = read_json(sidecar)
        except (OSError, ValueError):
            value = None
        if isinstance(value, dict) and value:
            return schemas.check(schemas.Sidecar, value, f"metadata {sidecar}", "export the ONNX again")
    return read_metadata(path if model is None else model)


def read_metadata(model_or_path: onnx.ModelProto | str | os.PathLike[str]) -> dict[str, Any]:
    """The edgeres metadata stored in the ONNX file ({} when it has none)."""
    model = as_model(model_or_path)
    for p in model.metadata_props:
        if p.key == METADATA_KEY:
            try:
                value = json.loads(p.value)
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
    return {}
