"""torch -> ONNX: BatchNorm folded, dynamic batch, checked by onnx.checker and ONNX Runtime parity.

The default exporter is PyTorch's TorchScript-based one (``torch.onnx.export(...,
dynamo=False)``) at opset 17; ``exporter="dynamo"`` uses the ``torch.export``-based
one (opset 18 or newer). See the README ("Export to ONNX") for why.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeres import __version__, limits, schemas
from edgeres.artifact import Artifact
from edgeres.data.preprocess import PreprocessSpec
from edgeres.errors import EdgeresError, UsageError
from edgeres.export.graph import clean_graph
from edgeres.fileio import atomic_path, load_json, sha256_file
from edgeres.onnxutil import check_onnx, onnx_input_spec, onnx_output_spec, op_counts, opset_of, set_metadata
from edgeres.optional import version_of

if TYPE_CHECKING:
    import onnx
    from torch import nn

    from edgeres.models import ResNet

EXPORTERS = ("torchscript", "dynamo")
MIN_OPSET = {"torchscript": 17, "dynamo": 18}
MAX_OPSET = 21
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
# parity: ORT vs PyTorch, relative to the largest reference logit, and mean cosine similarity
DEFAULT_TOLERANCE = 1e-3
MIN_COSINE = 0.9999


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with every BatchNorm folded into the convolution before it.

    Handles the ResNet layout: ``convN``/``bnN`` attribute pairs in the stem and the blocks,
    and ``Conv2d, BatchNorm2d`` pairs inside ``nn.Sequential`` (the projection shortcuts).
    The BatchNorm is replaced by ``nn.Identity``, which leaves no node in the ONNX graph.
    """
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, nn.Sequential):
            children = list(module._modules.items())
            for (name_a, a), (name_b, b) in itertools.pairwise(children):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    module._modules[name_a] = fuse_conv_bn_eval(a, b)
                    module._modules[name_b] = nn.Identity()
        for i in range(1, 10):
            conv, bn = getattr(module, f"conv{i}", None), getattr(module, f"bn{i}", None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                setattr(module, f"bn{i}", nn.Identity())
    return folded


def _export_bytes(model: nn.Module, example: Any, *, exporter: str, opset: int, dynamic: bool) -> bytes:
    import torch

    if exporter == "torchscript":
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "legacy TorchScript-based ONNX export" deprecation notices
            # a BytesIO works here; the annotation says a path only
            torch.onnx.export(
                model, (example,), buffer,  # type: ignore[arg-type]
                dynamo=False, export_params=True, opset_version=opset,
                do_constant_folding=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic else None,
            )
        return buffer.getvalue()
    # dynamo: torch.export-based; it prints progress on stdout, which would spoil --json output
    kwargs: dict[str, Any] = {}
    if dynamic:
        kwargs["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch", min=1, max=65536)}}
    for name in ("torch.onnx", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(model, (example,), None, dynamo=True, opset_version=opset,
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], optimize=True,
                                        verbose=False, **kwargs)
        except ImportError as exc:
            raise EdgeresError(f"the dynamo exporter needs onnxscript ({exc}): pip install 'edgeres[export]'") from None
    if program is None:
        raise EdgeresError("internal: the dynamo exporter returned no program; please report this")
    return bytes(program.model_proto.SerializeToString())


def fold_constants(proto: onnx.ModelProto) -> onnx.ModelProto | None:
    """Constant-fold what does not depend on the input, with ONNX Runtime's *basic* graph level
    (constant folding and redundant-node elimination; standard ONNX ops only). The TorchScript
    exporter computes the zero-pad shortcut's padding at run time from the input's shape
    (Shape/ConstantOfShape/Concat/Transpose chains); this turns them into plain Pad/Slice nodes.
    Returns None when ONNX Runtime is missing or the result would use non-standard ops."""
    import onnx

    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import tempfile

    with tempfile.TemporaryDirectory(prefix="edgeres-fold-") as tmp:
        folded_path = Path(tmp) / "folded.onnx"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded_path)
        ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        folded = onnx.load(str(folded_path))
    if any(n.domain not in ("", "ai.onnx") for n in folded.graph.node):
        return None
    # keep the original IR version and opset imports (ORT lists every domain it knows)
    folded.ir_version = proto.ir_version
    del folded.opset_import[:]
    folded.opset_import.extend(o for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    del folded.graph.value_info[:]
    return folded


def onnx_parity(model_bytes: bytes, reference: nn.Module, input_shape: Sequence[int], *, batch: int,
                dynamic: bool, seed: int = 0) -> dict[str, Any]:
    """Random inputs through ONNX Runtime and PyTorch: max abs diff and mean cosine similarity.

    One PyTorch forward pass at ``batch``; with a dynamic batch ONNX Runtime also runs the first
    image alone (batch 1) and that row is compared too.
    """
    import torch

    from edgeres.validate.metrics import cosine_similarity

    try:
        import onnxruntime as ort
    except ImportError:
        return {"skipped": "onnxruntime is not installed (pip install 'edgeres[onnxruntime]')"}
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(seed).standard_normal((batch, *input_shape)).astype(np.float32)
    with torch.no_grad():
        ref = reference(torch.from_numpy(x)).numpy()
    got = session.run(None, {INPUT_NAME: x})[0]
    batches = [batch]
    if dynamic and batch > 1:
        got = np.concatenate([got, session.run(None, {INPUT_NAME: x[:1]})[0]])
        ref = np.concatenate([ref, ref[:1]])
        batches.append(1)
    return {
        "inputs": batch, "batches": batches,
        "max_abs_diff": float(np.max(np.abs(got - ref))),
        "max_abs_reference": float(np.max(np.abs(ref))),
        "cosine": float(np.mean(cosine_similarity(got, ref))),
        "top1_agreement": float(np.mean(got.argmax(1) == ref.argmax(1))),
    }


def _resolve_out(out: str | os.PathLike[str]) -> Path:
    """``out`` names the .onnx file; a path without the .onnx suffix is a folder for model.onnx."""
    out = Path(out)
    if out.suffix.lower() != ".onnx" or out.is_dir():
        return out / "model.onnx"
    return out


def export_onnx(
    model: ResNet,
    out: str | os.PathLike[str],
    *,
    input_size: int,
    batch: str | int = "dynamic",
    opset: int = 17,
    preprocess: PreprocessSpec | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | None = None,
    exporter: str = "torchscript",
    tolerance: float = DEFAULT_TOLERANCE,
    parity_seed: int = 0,
) -> Artifact:
    """Export ``model`` to ONNX at ``out`` (a .onnx path, or a folder that receives model.onnx).

    BatchNorm is folded into the convolutions, Identity nodes and duplicate initializers are
    removed, the graph is checked with ``onnx.checker`` (full check) and against PyTorch with
    ONNX Runtime on random inputs (``EdgeresError`` when the largest difference exceeds
    ``tolerance`` times the largest reference logit, or the mean cosine similarity is below
    0.9999). The file is written atomically, metadata goes into its ``metadata_props`` and into
    the sidecar ``model.onnx.json``.
    """
    import onnx
    import torch

    from edgeres.models import check_input_size

    started = time.perf_counter()
    check_input_size(input_size)
    batch = _check_export_args(exporter, opset, batch)
    dynamic = batch == "dynamic"
    num_classes = int(getattr(model, "num_classes", 0)) or None
    if classes is not None:
        classes = [str(c) for c in classes]
        if num_classes is not None and len(classes) != num_classes:
            raise EdgeresError(f"{len(classes)} class names were given for a model with {num_classes} classes")
    in_channels = int(getattr(model, "in_channels", 3))
    preprocess = preprocess or PreprocessSpec.for_size(input_size)
    if preprocess.crop != input_size:
        raise EdgeresError(f"the preprocessing crops to {preprocess.crop} pixels but the model is exported for "
                           f"{input_size}: give matching --input-size and preprocessing")
    out_path = _resolve_out(out)

    was_training = model.training
    model.eval()
    try:
        example = torch.randn(2 if dynamic else int(batch), in_channels, input_size, input_size)
        proto, cleaned = _export_clean(model, example, exporter=exporter, opset=opset, dynamic=dynamic)
        ops = op_counts(proto)
        if "BatchNormalization" in ops:
            raise EdgeresError("internal: BatchNormalization survived folding; please report this")
        check_onnx(proto, full_check=True)
        parity = onnx_parity(proto.SerializeToString(), model, (in_channels, input_size, input_size),
                             batch=3 if dynamic else int(batch), dynamic=dynamic, seed=parity_seed)
    finally:
        model.train(was_training)
    _check_parity(parity, tolerance)

    metadata = _fp32_metadata(model, proto, input_size=input_size, batch=batch, classes=classes,
                              preprocess=preprocess, checkpoint=checkpoint, exporter=exporter, ops=ops,
                              cleaned=cleaned, parity=parity)
    proto.producer_name, proto.producer_version = "edgeres", __version__
    proto.doc_string = f"ResNet-{metadata['depth']} exported by edgeres {__version__} ({exporter} exporter)"
    set_metadata(proto, metadata)
    with atomic_path(out_path) as tmp:
        onnx.save(proto, str(tmp))
    metadata["export_seconds"] = round(time.perf_counter() - started, 3)
    return Artifact(path=out_path, metadata=metadata).save()


def _fp32_metadata(model: nn.Module, proto: onnx.ModelProto, *, input_size: int, batch: str | int,
                   classes: list[str] | None, preprocess: PreprocessSpec, checkpoint: str | os.PathLike[str] | None,
                   exporter: str, ops: dict[str, int], cleaned: dict[str, Any],
                   parity: dict[str, Any]) -> dict[str, Any]:
    """What the sidecar and the ONNX's own metadata say about an FP32 export."""
    import onnx
    import torch

    return {
        "backend": "onnx",
        "backend_version": onnx.__version__,
        "precision": "fp32",
        "target": None,
        "input": onnx_input_spec(proto),
        "output": onnx_output_spec(proto),
        "model": f"resnet{getattr(model, 'depth', '')}",
        "depth": getattr(model, "depth", None),
        "num_classes": int(getattr(model, "num_classes", 0)) or None,
        "in_channels": int(getattr(model, "in_channels", 3)),
        "shortcut": getattr(model, "shortcut", None),
        "input_size": input_size,
        "batch": batch,
        "classes": classes,
        "preprocess": preprocess.to_dict(),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "checkpoint_sha256": sha256_file(checkpoint) if checkpoint else None,
        "weights": "checkpoint" if checkpoint else "random",
        "opset": opset_of(proto),
        "exporter": exporter,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "onnxruntime_version": version_of("onnxruntime"),
        "edgeres_version": __version__,
        "graph": {"nodes": len(proto.graph.node), "initializers": len(proto.graph.initializer), "ops": ops,
                  **cleaned},
        "parity": parity,
    }


def _check_export_args(exporter: str, opset: int, batch: str | int) -> str | int:
    """The exporter, opset and batch a caller asked for, checked; the batch as "dynamic" or an int."""
    if exporter not in EXPORTERS:
        raise UsageError(f"unknown exporter {exporter!r}: choose from {', '.join(EXPORTERS)}")
    if not MIN_OPSET[exporter] <= opset <= MAX_OPSET:
        if exporter == "dynamo" and opset < MIN_OPSET["dynamo"]:
            raise UsageError(f"the dynamo exporter writes opset 18 or newer, got --opset {opset}")
        raise UsageError(f"opset must be between {MIN_OPSET[exporter]} and {MAX_OPSET}, got {opset}")
    if batch == "dynamic":
        return batch
    try:
        batch = int(batch)
    except (TypeError, ValueError):
        raise UsageError(f"batch must be 'dynamic' or a positive integer, got {batch!r}") from None
    if batch < 1:
        raise UsageError(f"batch must be 'dynamic' or a positive integer, got {batch}")
    limits.check("the batch", batch, limits.BATCH)
    return batch


def _export_clean(model: nn.Module, example: Any, *, exporter: str, opset: int,
                  dynamic: bool) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """Export, then clean the graph: BatchNorm folded, Identities and duplicate initializers
    removed, shape arithmetic folded into constants. Returns the graph and what was removed."""
    import onnx

    # Both exporters fold eval-mode BatchNorm into the convolutions (constant folding); should
    # one survive, fold it in PyTorch and export again.
    raw = _export_bytes(model, example, exporter=exporter, opset=opset, dynamic=dynamic)
    proto: onnx.ModelProto = onnx.load_from_string(raw)
    bn_folded_by = "exporter"
    if any(n.op_type == "BatchNormalization" for n in proto.graph.node):
        raw = _export_bytes(fold_batchnorm(model), example, exporter=exporter, opset=opset, dynamic=dynamic)
        proto = onnx.load_from_string(raw)
        bn_folded_by = "edgeres (torch)"
    cleaned: dict[str, Any] = clean_graph(proto)
    cleaned["batchnorm_folded_by"] = bn_folded_by
    if any(n.op_type in ("Shape", "ConstantOfShape", "Constant") for n in proto.graph.node):
        folded_proto = fold_constants(proto)
        if folded_proto is not None and len(folded_proto.graph.node) < len(proto.graph.node):
            cleaned["constant_nodes_folded"] = len(proto.graph.node) - len(folded_proto.graph.node)
            proto = folded_proto
            for key, value in clean_graph(proto).items():
                cleaned[key] = cleaned.get(key, 0) + value
    return proto, cleaned


def _check_parity(parity: dict[str, Any], tolerance: float) -> None:
    """Refuse an export whose ONNX Runtime logits do not match PyTorch's (records the limits in ``parity``)."""
    if "skipped" in parity:
        return
    limit = tolerance * max(1.0, parity["max_abs_reference"])
    parity.update(tolerance=limit, min_cosine=MIN_COSINE)
    if parity["max_abs_diff"] > limit or parity["cosine"] < MIN_COSINE:
        raise EdgeresError(
            f"the exported ONNX does not match PyTorch: max abs diff {parity['max_abs_diff']:.3g} (limit "
            f"{limit:.3g}), cosine {parity['cosine']:.6f} (minimum {MIN_COSINE}); nothing was written")


def checkpoint_info(weights: str | os.PathLike[str] | None) -> dict[str, Any]:
    """What a checkpoint's companion JSON says about it: ``<name>.json`` or ``model.json`` beside
    the weights (as ``scripts/train_demo.py`` writes): depth, num_classes, input_size, classes,
    preprocess... ({} when there is none)."""

    if weights is None:
        return {}
    weights = Path(weights)
    for candidate in (weights.with_suffix(".json"), weights.parent / "model.json"):
        if candidate.is_file():
            data = load_json(candidate, f"the description of {weights.name},", shape=schemas.ModelInfo)
            data["_source"] = str(candidate)
            return data
    return {}


def export_resnet(depth: int, out: str | os.PathLike[str], *, weights: str | os.PathLike[str] | None = None,
                  num_classes: int | None = None, input_size: int | None = None, in_channels: int = 3,
                  shortcut: str = "projection", batch: str | int = "dynamic", opset: int = 17,
                  exporter: str = "torchscript", classes: Sequence[str] | None = None,
                  preprocess: PreprocessSpec | None = None) -> Artifact:
    """Build the ResNet (random weights, or ``weights`` loaded strictly) and export it.

    Class count, input size, class names and preprocessing not given are taken from the
    checkpoint's companion JSON when there is one, else 1000 classes at 224 px.
    """
    from edgeres.models import ResNet, check_input_size, load_checkpoint

    info = checkpoint_info(weights)
    if info.get("depth") is not None and int(info["depth"]) != depth:
        raise UsageError(f"{info['_source']} says the checkpoint is a ResNet-{info['depth']}, but --depth is {depth}")
    num_classes = num_classes or int(info.get("num_classes") or 1000)
    input_size = input_size or int(info.get("input_size") or 224)
    check_input_size(input_size)
    if classes is None and isinstance(info.get("classes"), list) and len(info["classes"]) == num_classes:
        classes = [str(c) for c in info["classes"]]
    if preprocess is None and isinstance(info.get("preprocess"), dict):
        preprocess = PreprocessSpec.from_dict(info["preprocess"])
        if preprocess.crop != input_size:
            # another input size than the checkpoint was trained at: same normalization, scaled crop
            preprocess = PreprocessSpec.for_size(input_size, mean=preprocess.mean, std=preprocess.std)
    model = ResNet(depth, num_classes=num_classes, in_channels=in_channels, shortcut=shortcut)  # type: ignore[arg-type]
    if weights is not None:
        load_checkpoint(model, weights)
    return export_onnx(model, out, input_size=input_size, batch=batch, opset=opset, preprocess=preprocess,
                       checkpoint=weights, classes=classes, exporter=exporter)
