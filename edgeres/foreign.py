"""A model file edgeres did not write (an OpenVINO IR from ``ovc``, an ONNX from
``torch.onnx.export``), described as an in-memory ``Artifact`` so ``bench`` times it with the
same runners as its own artifacts, the way OpenVINO's ``benchmark_app`` times any IR.

Nothing is written beside the user's model. The metadata says what the file holds, not what
edgeres would have built: the precision is read from the graph ("int8" when it holds
FakeQuantize or Q/DQ, else its float type, or "as-is" when the graph cannot be read), and no
inference precision is forced on OpenVINO (its own default, as ``benchmark_app`` leaves it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeres.artifact import Artifact
from edgeres.errors import EdgeresError
from edgeres.optional import require

SUFFIXES = {".xml": "openvino", ".onnx": "onnxruntime"}  # model file -> the backend that runs it by default
RUNTIMES = {".xml": ("openvino",), ".onnx": ("onnxruntime", "openvino")}
OV_TYPES = {"f32": "fp32", "f16": "fp16", "bf16": "bf16", "f64": "fp64"}
COMPUTE_OPS = ("Convolution", "GroupConvolution", "MatMul")
INPUT_TYPES = ("float32", "float16", "uint8", "int8")  # what bench can make: noise, or pixels for an integer input
PRECISION_SOURCE = {
    "openvino": "what the model holds (read from its graph); OpenVINO runs it in its own default inference "
                "precision, none forced, as benchmark_app does",
    "onnxruntime": "what the model holds (read from its graph); ONNX Runtime runs it as it is",
}


def foreign_artifact(path: Path, backend: str | None = None) -> Artifact | None:
    """``path`` (an IR ``.xml`` with its ``.bin``, or an ``.onnx``) as an Artifact whose metadata
    the backends' ``load`` accept; None for any other kind of file. One ``EdgeresError`` when the
    file is not a model bench can time (unreadable, several inputs, not a fixed-size image input)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES or not path.is_file():
        return None
    backend = backend or SUFFIXES[suffix]
    if backend not in RUNTIMES[suffix]:
        raise EdgeresError(f"{path.name}: --backend {backend} cannot run a {suffix} file; choose "
                           f"{' or '.join(RUNTIMES[suffix])}")
    files: list[Path] = []
    if suffix == ".xml":
        files = [path.with_suffix(".bin")]
        if not files[0].is_file():
            raise EdgeresError(f"OpenVINO IR {path} needs its weights file {files[0].name} beside it, and it is missing")
    if backend == "openvino":
        spec, precision = _read_openvino(path)
    else:
        spec, precision = _read_onnx(path)
    _check_input(path, spec)
    batch = spec["shape"][0]
    opt = batch if isinstance(batch, int) else 1
    metadata: dict[str, Any] = {
        "backend": backend, "precision": precision, "target": None, "model": path.name, "input": spec,
        "foreign": True, "precision_source": PRECISION_SOURCE[backend] if precision != "as-is" else
        "its graph was not read (the onnx package is not installed); the runtime runs the model as it is",
        # OpenVINO's runner: no inference precision forced, the first compile at the model's own batch
        "inference_precision_hint": None, "device": "CPU", "batch_profile": f"{opt}:{opt}:{opt}",
    }
    return Artifact(path=path, metadata=metadata, files=files)


def _several_inputs(path: Path, names: list[str]) -> EdgeresError:
    return EdgeresError(f"{path.name} has {len(names)} inputs ({', '.join(names)}); edgeres bench times models with "
                        "one image input")


def _check_input(path: Path, spec: dict[str, Any]) -> None:
    """Bench makes random [N, C, H, W] float32 batches: refuse any input it cannot make."""
    shape, name = spec["shape"], spec["name"]
    shown = "[" + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape) + "]"
    if len(shape) != 4:
        raise EdgeresError(f"{path.name}: its input '{name}' has shape {shown}; edgeres bench times models with one "
                           "4-D image input [N, C, H, W]")
    if not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        raise EdgeresError(f"{path.name}: its input '{name}' has shape {shown}; C, H and W must be fixed for bench to "
                           "make an input (only the batch may be dynamic): convert it with a fixed input size, e.g. "
                           f"ovc --input \"{name}[?,3,224,224]\"")
    if spec["dtype"] not in INPUT_TYPES:
        raise EdgeresError(f"{path.name}: its input '{name}' is {spec['dtype']}; edgeres bench feeds "
                           f"{', '.join(INPUT_TYPES)} batches")


def _read_openvino(path: Path) -> tuple[dict[str, Any], str]:
    """The single input and the precision the graph holds, read by OpenVINO (an IR or an ONNX)."""
    ov = require("openvino", f"timing {path.name} on OpenVINO")
    from openvino.frontend import FrontEndManager

    # this file's own format's reader: Core.read_model would try every frontend on a broken file, and
    # some of them log their own parse errors to stderr
    frontend = FrontEndManager().load_by_framework("ir" if path.suffix.lower() == ".xml" else "onnx")
    try:
        model = frontend.convert(frontend.load(str(path)))
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError and its frontends' own types
        lines = [ln.strip() for ln in str(exc).splitlines()
                 if ln.strip() and not ln.startswith(("Exception from src/", "Check '"))]
        raise EdgeresError(f"{path} is not a model OpenVINO {ov.__version__.split('-')[0]} can read "
                           f"({lines[-1].rstrip('. :') if lines else type(exc).__name__})") from None
    if len(model.inputs) != 1:
        raise _several_inputs(path, [p.get_any_name() if p.get_names() else "?" for p in model.inputs])
    port = model.inputs[0]
    pshape = port.get_partial_shape()
    if pshape.rank.is_dynamic:
        shape: list[int | str] = ["?"]  # refused by _check_input as not 4-D
    else:
        shape = [d.get_length() if d.is_static else "?" for d in pshape]
    dtype = {"f32": "float32", "f16": "float16", "u8": "uint8", "i8": "int8"}.get(
        port.get_element_type().get_type_name(), port.get_element_type().get_type_name())
    spec = {"name": port.get_any_name() if port.get_names() else f"input {port.get_index()}", "shape": shape,
            "dtype": dtype}
    return spec, _ov_precision(model)


def _ov_precision(model: Any) -> str:
    """"int8" when the graph quantizes (FakeQuantize: an NNCF IR, or Q/DQ read from an ONNX), else the
    float type its convolutions and matrix products compute in."""
    ops = model.get_ordered_ops()
    if any(op.get_type_name() == "FakeQuantize" for op in ops):
        return "int8"
    for op in ops:
        if op.get_type_name() in COMPUTE_OPS:
            name = op.get_output_element_type(0).get_type_name()
            return OV_TYPES.get(name, name)
    return "as-is"


def _read_onnx(path: Path) -> tuple[dict[str, Any], str]:
    """The single input and the precision the graph holds, read with ``onnx``; without it (a device
    install), the input as ONNX Runtime reports it and the precision "as-is"."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return _ort_input(path), "as-is"
    from edgeres.onnxutil import graph_precision, load_onnx, onnx_input_spec

    model = load_onnx(path, load_external_data=False)
    try:
        spec = onnx_input_spec(model)
    except EdgeresError:
        names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
        raise _several_inputs(path, names) from None
    spec["shape"] = [d if isinstance(d, int) and d > 0 else "?" for d in spec["shape"]]
    return spec, graph_precision(model)


def _ort_input(path: Path) -> dict[str, Any]:
    ort = require("onnxruntime", f"timing {path.name} on ONNX Runtime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        inputs = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).get_inputs()
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EdgeresError(f"{path} is not a model ONNX Runtime can read ({first})") from None
    if len(inputs) != 1:
        raise _several_inputs(path, [i.name for i in inputs])
    dtype = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
             "tensor(int8)": "int8"}.get(inputs[0].type, inputs[0].type)
    shape = [d if isinstance(d, int) and d > 0 else "?" for d in inputs[0].shape]
    return {"name": inputs[0].name, "shape": shape, "dtype": dtype}
